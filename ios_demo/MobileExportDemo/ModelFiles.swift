import Foundation
import MobileExportCore

/// The export that `mobile-export bundle --ios` copied into the app's `Model/` resources folder.
struct ModelFiles {
    /// The folder in the app bundle, copied whole by the Xcode project's "Copy bundled model" build phase.
    static let folderName = "Model"

    let folder: URL
    let manifest: Manifest
    let labels: [String]
    /// The model file that `manifest.json` names: an `.mlpackage`, `.mlmodel` or compiled `.mlmodelc`.
    let modelURL: URL
    /// The export's `golden.json`, or `nil` when the export came without one.
    let golden: GoldenFile?

    /// Reads and checks `manifest.json`, the labels and the golden cases from the app bundle.
    ///
    /// - Throws: ``ModelFilesError`` for a missing file or a model that is not Core ML,
    ///   ``ManifestError`` or ``LabelsError`` for invalid contents.
    static func load(from bundle: Bundle = .main) throws -> ModelFiles {
        guard let resources = bundle.resourceURL else {
            throw ModelFilesError.missingFile(ModelFiles.folderName)
        }
        let folder = resources.appendingPathComponent(folderName, isDirectory: true)

        let manifestURL = folder.appendingPathComponent("manifest.json")
        let manifest = try Manifest.decode(from: read(manifestURL))

        let labelsURL = folder.appendingPathComponent(manifest.labels.file)
        guard let labelsText = String(data: try read(labelsURL), encoding: .utf8) else {
            throw ModelFilesError.notUTF8(manifest.labels.file)
        }
        let labels = try Labels.parse(labelsText)
        guard labels.count == manifest.output.classes else {
            throw OutputError.labelCountMismatch(labels: labels.count, classes: manifest.output.classes)
        }

        let modelURL = folder.appendingPathComponent(manifest.model.file)
        guard FileManager.default.fileExists(atPath: modelURL.path) else {
            throw ModelFilesError.missingFile("\(folderName)/\(manifest.model.file)")
        }
        guard CoreMLFormat(url: modelURL) != nil else {
            throw ModelFilesError.notCoreML(manifest.model.file)
        }

        let goldenURL = folder.appendingPathComponent("golden.json")
        let golden = FileManager.default.fileExists(atPath: goldenURL.path)
            ? try GoldenFile.decode(from: read(goldenURL))
            : nil

        return ModelFiles(folder: folder, manifest: manifest, labels: labels, modelURL: modelURL, golden: golden)
    }

    private static func read(_ url: URL) throws -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFilesError.missingFile("\(folderName)/\(url.lastPathComponent)")
        }
        return try Data(contentsOf: url)
    }
}

/// The Core ML file formats the app can load, by file extension.
enum CoreMLFormat {
    /// Already compiled, as Xcode compiles models that are build sources.
    case compiled
    /// An `.mlpackage` or `.mlmodel`, compiled on the device when the app starts.
    case source

    init?(url: URL) {
        switch url.pathExtension.lowercased() {
        case "mlmodelc": self = .compiled
        case "mlpackage", "mlmodel": self = .source
        default: return nil
        }
    }
}

/// A bundled export that the app cannot use; the message names the file and the fix.
enum ModelFilesError: Error, LocalizedError {
    case missingFile(String)
    case notUTF8(String)
    case notCoreML(String)

    var errorDescription: String? {
        switch self {
        case let .missingFile(path):
            return "\(path) is missing from the app. Run `mobile-export bundle OUT --ios ios_demo` "
                + "with a Core ML export, then build the app again."
        case let .notUTF8(name):
            return "\(ModelFiles.folderName)/\(name) is not valid UTF-8; rebuild the export."
        case let .notCoreML(name):
            return "\(ModelFiles.folderName)/\(name) is not a Core ML model (.mlpackage, .mlmodel or .mlmodelc); "
                + "this app runs Core ML exports only. Bundle a Core ML export."
        }
    }
}
