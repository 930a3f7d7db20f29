import AVFoundation
import Foundation
import MobileExportCore
import os
import UIKit

/// The top classes of one camera frame and where the time went.
struct FrameResult: Sendable {
    let predictions: [Prediction]
    /// BGRA to upright RGB, then ``Preprocessor`` to the model size.
    let prepareMilliseconds: Double
    /// The Core ML prediction alone.
    let inferenceMilliseconds: Double
}

/// The state behind the screen: loads the bundled export, runs the back camera, and publishes the
/// top-3 classes of each frame that the model had time for.
@MainActor
final class CameraModel: ObservableObject {
    enum Phase: Equatable {
        case loading
        case running
        case failed(String)
    }

    @Published private(set) var phase = Phase.loading
    @Published private(set) var modelName = ""
    /// How many golden cases this device reproduced, or `nil` before the check or without `golden.json`.
    @Published private(set) var goldenSummary: String?
    @Published private(set) var latest: FrameResult?
    /// The last per-frame error, cleared by the next frame that succeeds.
    @Published private(set) var frameError: String?

    let session = AVCaptureSession()

    private let logger = Logger(subsystem: Bundle.main.bundleIdentifier ?? "MobileExportDemo", category: "camera")
    private let sessionQueue = DispatchQueue(label: "MobileExportDemo.session")
    private let frameQueue = DispatchQueue(label: "MobileExportDemo.frames", qos: .userInitiated)
    private var processor: FrameProcessor?
    private var repeatedFrameErrors = 0
    private var observers: [NSObjectProtocol] = []

    /// Loads the model, requests camera access and starts the capture session. A failure ends in `.failed`.
    func start() async {
        // SwiftUI runs `.task` again when the view reappears; the pipeline is already loaded then.
        if processor != nil {
            startSession()
            return
        }

        let loaded: FrameProcessor
        do {
            loaded = try await loadProcessor()
        } catch {
            fail("Loading the model failed", error)
            return
        }
        loaded.model = self
        processor = loaded
        modelName = loaded.files.manifest.model.file
        goldenSummary = summarize(loaded.goldenResults)

        guard await cameraAccessGranted() else {
            fail("Camera access is off", CameraError.accessDenied)
            return
        }
        do {
            try await configureSession(delivering: loaded)
        } catch {
            fail("Setting up the camera failed", error)
            return
        }
        observeOrientation(of: loaded)
        observeSessionErrors()
        startSession()
        phase = .running
    }

    /// Stops the capture session; ``start()`` resumes it.
    func stop() {
        let session = self.session
        sessionQueue.async {
            session.stopRunning()
        }
    }

    // MARK: - Loading

    private func loadProcessor() async throws -> FrameProcessor {
        let queue = self.frameQueue
        return try await withCheckedThrowingContinuation { continuation in
            // Compiling and loading a Core ML model takes a while, so keep it off the main thread.
            queue.async {
                continuation.resume(with: Result { try FrameProcessor.load() })
            }
        }
    }

    private func summarize(_ results: [GoldenCaseResult]) -> String? {
        guard !results.isEmpty else { return nil }
        let failed = results.filter { !$0.passed }
        for result in failed {
            logger.error("Golden case \(result.name, privacy: .public) failed: \(result.failures.joined(separator: " "), privacy: .public)")
        }
        let passed = results.count - failed.count
        return "Golden check: \(passed) of \(results.count) cases match the Python pipeline"
            + (failed.isEmpty ? "" : " (see the log)")
    }

    // MARK: - Camera

    private func cameraAccessGranted() async -> Bool {
        switch AVCaptureDevice.authorizationStatus(for: .video) {
        case .authorized:
            return true
        case .notDetermined:
            return await AVCaptureDevice.requestAccess(for: .video)
        default:
            return false
        }
    }

    private func configureSession(delivering processor: FrameProcessor) async throws {
        let session = self.session
        let frameQueue = self.frameQueue
        let queue = self.sessionQueue
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            // Configuring a session blocks, so it runs on the session queue, not the main thread.
            queue.async {
                continuation.resume(with: Result {
                    try Self.configure(session, delivering: processor, on: frameQueue)
                })
            }
        }
    }

    private nonisolated static func configure(
        _ session: AVCaptureSession, delivering processor: FrameProcessor, on frameQueue: DispatchQueue
    ) throws {
        guard let camera = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back) else {
            throw CameraError.noCamera
        }
        let input = try AVCaptureDeviceInput(device: camera)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        // Frames that arrive while the model is busy are dropped, so results never lag behind.
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(processor, queue: frameQueue)

        session.beginConfiguration()
        defer { session.commitConfiguration() }
        // 720p is ample for a 224-pixel model input and keeps the per-frame conversion cheap.
        if session.canSetSessionPreset(.hd1280x720) {
            session.sessionPreset = .hd1280x720
        }
        guard session.canAddInput(input) else { throw CameraError.cannotAdd("the back camera") }
        session.addInput(input)
        guard session.canAddOutput(output) else { throw CameraError.cannotAdd("the video frame output") }
        session.addOutput(output)
    }

    private func startSession() {
        let session = self.session
        sessionQueue.async {
            // startRunning blocks until the camera is running, so it stays off the main thread.
            if !session.isRunning {
                session.startRunning()
            }
        }
    }

    private func observeOrientation(of processor: FrameProcessor) {
        UIDevice.current.beginGeneratingDeviceOrientationNotifications()
        processor.setRotation(Self.rotation(for: UIDevice.current.orientation) ?? .clockwise90)
        let observer = NotificationCenter.default.addObserver(
            forName: UIDevice.orientationDidChangeNotification, object: nil, queue: .main
        ) { _ in
            Task { @MainActor in
                // Face up, face down and unknown keep the last rotation.
                if let rotation = Self.rotation(for: UIDevice.current.orientation) {
                    processor.setRotation(rotation)
                }
            }
        }
        observers.append(observer)
    }

    /// Returns the clockwise turn that makes a back-camera frame upright when the device is held in
    /// `orientation`. The sensor's frames are upright with the device in landscape, top to the left.
    private static func rotation(for orientation: UIDeviceOrientation) -> FrameRotation? {
        // NOTE: this mapping has not been checked on a device yet. Rotated results would point here.
        switch orientation {
        case .portrait: return .clockwise90
        case .landscapeLeft: return FrameRotation.none
        case .landscapeRight: return .upsideDown180
        case .portraitUpsideDown: return .counterclockwise90
        default: return nil
        }
    }

    private func observeSessionErrors() {
        let observer = NotificationCenter.default.addObserver(
            forName: .AVCaptureSessionRuntimeError, object: session, queue: .main
        ) { [weak self] notification in
            let error = notification.userInfo?[AVCaptureSessionErrorKey] as? Error ?? CameraError.unknownRuntimeError
            Task { @MainActor in
                self?.fail("The camera stopped", error)
            }
        }
        observers.append(observer)
    }

    // MARK: - Results

    /// Publishes one frame's outcome; repeated identical errors are logged once, with a count on recovery.
    fileprivate func apply(_ outcome: Result<FrameResult, Error>) {
        switch outcome {
        case let .success(result):
            latest = result
            if frameError != nil {
                logger.notice("Frames classify again after \(self.repeatedFrameErrors) failed frames")
                frameError = nil
                repeatedFrameErrors = 0
            }
        case let .failure(error):
            let message = error.localizedDescription
            repeatedFrameErrors += 1
            if message != frameError {
                logger.error("Classifying a frame failed: \(message, privacy: .public)")
                frameError = message
            }
        }
    }

    private func fail(_ context: String, _ error: Error) {
        let message = "\(context): \(error.localizedDescription)"
        logger.error("\(message, privacy: .public)")
        phase = .failed(message)
    }
}

/// Camera set-up failures. Each message names the fix.
enum CameraError: Error, LocalizedError {
    case accessDenied
    case noCamera
    case cannotAdd(String)
    case unknownRuntimeError

    var errorDescription: String? {
        switch self {
        case .accessDenied:
            return "allow camera access for MobileExportDemo in Settings > Privacy & Security > Camera."
        case .noCamera:
            return "this device has no back camera. Run the app on an iPhone or iPad; the simulator has no camera."
        case let .cannotAdd(what):
            return "the capture session does not accept \(what). Close other apps that use the camera and retry."
        case .unknownRuntimeError:
            return "the capture session reported a runtime error without details."
        }
    }
}

/// Runs on the frame queue: converts each camera frame, prepares it, runs the model and reads the top-3.
///
/// `@unchecked Sendable` because everything but `rotation` is immutable after ``load()`` and used
/// on the frame queue only, and `rotation` is guarded by a lock.
final class FrameProcessor: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    static let topCount = 3

    let files: ModelFiles
    let goldenResults: [GoldenCaseResult]
    private let classifier: Classifier
    private let rotationLock = NSLock()
    private var rotation = FrameRotation.clockwise90
    /// The receiver of results, set once by the camera model before frames arrive.
    weak var model: CameraModel?

    private init(files: ModelFiles, classifier: Classifier, goldenResults: [GoldenCaseResult]) {
        self.files = files
        self.classifier = classifier
        self.goldenResults = goldenResults
    }

    /// Reads the bundled export, loads the model, and reproduces the golden cases on this device.
    static func load() throws -> FrameProcessor {
        let files = try ModelFiles.load()
        let classifier = try CoreMLClassifier(modelURL: files.modelURL, manifest: files.manifest)
        let goldenResults = files.golden.map { GoldenCheck.run($0, manifest: files.manifest, labels: files.labels) } ?? []
        return FrameProcessor(files: files, classifier: classifier, goldenResults: goldenResults)
    }

    func setRotation(_ newRotation: FrameRotation) {
        rotationLock.lock()
        rotation = newRotation
        rotationLock.unlock()
    }

    private func currentRotation() -> FrameRotation {
        rotationLock.lock()
        defer { rotationLock.unlock() }
        return rotation
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        let outcome = Result { try classify(sampleBuffer) }
        let model = self.model
        Task { @MainActor in
            model?.apply(outcome)
        }
    }

    private func classify(_ sampleBuffer: CMSampleBuffer) throws -> FrameResult {
        guard let frame = CMSampleBufferGetImageBuffer(sampleBuffer) else {
            throw FrameError.noImage
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let photo = try uprightRGB(of: frame)
        let manifest = files.manifest
        let pixels = try Preprocessor.prepare(
            rgb: photo.pixels, photoHeight: photo.height, photoWidth: photo.width, manifest: manifest
        )

        let prepared = DispatchTime.now().uptimeNanoseconds
        let raw = try classifier.outputTensor(for: pixels)
        let inferred = DispatchTime.now().uptimeNanoseconds

        let predictions = try Postprocessor.topK(raw: raw, manifest: manifest, labels: files.labels, k: Self.topCount)
        return FrameResult(
            predictions: predictions,
            prepareMilliseconds: Double(prepared - start) / 1e6,
            inferenceMilliseconds: Double(inferred - prepared) / 1e6
        )
    }

    private func uprightRGB(of frame: CVPixelBuffer) throws -> RGBImage {
        let format = CVPixelBufferGetPixelFormatType(frame)
        guard format == kCVPixelFormatType_32BGRA else {
            throw FrameError.pixelFormat(format)
        }
        let locked = CVPixelBufferLockBaseAddress(frame, .readOnly)
        guard locked == kCVReturnSuccess else {
            throw FrameError.lockFailed(locked)
        }
        defer { CVPixelBufferUnlockBaseAddress(frame, .readOnly) }
        guard let base = CVPixelBufferGetBaseAddress(frame) else {
            throw FrameError.noImage
        }
        let height = CVPixelBufferGetHeight(frame)
        let bytesPerRow = CVPixelBufferGetBytesPerRow(frame)
        let bytes = UnsafeRawBufferPointer(start: base, count: height * bytesPerRow)
        return try FrameConverter.rgb(
            bgra: bytes, height: height, width: CVPixelBufferGetWidth(frame), bytesPerRow: bytesPerRow,
            rotation: currentRotation()
        )
    }
}

/// A camera frame that cannot be read.
enum FrameError: Error, LocalizedError {
    case noImage
    case pixelFormat(OSType)
    case lockFailed(CVReturn)

    var errorDescription: String? {
        switch self {
        case .noImage:
            return "A camera frame carried no readable image."
        case let .pixelFormat(format):
            return "A camera frame has pixel format \(format); the app requests 32-bit BGRA."
        case let .lockFailed(status):
            return "Reading a camera frame failed with Core Video status \(status)."
        }
    }
}
