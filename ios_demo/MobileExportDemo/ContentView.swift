import MobileExportCore
import SwiftUI

/// The camera preview with the model's top-3 classes and timings over it.
struct ContentView: View {
    @StateObject private var camera = CameraModel()

    var body: some View {
        ZStack(alignment: .bottom) {
            CameraPreview(session: camera.session)
                .ignoresSafeArea()
            ResultsPanel(camera: camera)
                .padding()
        }
        .background(Color.black)
        .task {
            await camera.start()
        }
        .onDisappear {
            camera.stop()
        }
    }
}

/// The model's result for the latest frame, or what went wrong.
private struct ResultsPanel: View {
    @ObservedObject var camera: CameraModel

    var body: some View {
        VStack(alignment: .leading, spacing: 8) {
            switch camera.phase {
            case .loading:
                ProgressView("Loading the model")
            case let .failed(message):
                Label(message, systemImage: "exclamationmark.triangle.fill")
                    .foregroundColor(.red)
            case .running:
                running
            }
        }
        .frame(maxWidth: .infinity, alignment: .leading)
        .padding()
        .background(.regularMaterial, in: RoundedRectangle(cornerRadius: 12))
    }

    @ViewBuilder private var running: some View {
        Text(camera.modelName)
            .font(.caption.monospaced())
            .foregroundColor(.secondary)

        if let result = camera.latest {
            ForEach(result.predictions, id: \.index) { prediction in
                PredictionRow(prediction: prediction)
            }
            Text(String(format: "Model %.1f ms · preparing the frame %.1f ms",
                        result.inferenceMilliseconds, result.prepareMilliseconds))
                .font(.footnote.monospacedDigit())
        } else {
            ProgressView("Waiting for the first frame")
        }

        if let error = camera.frameError {
            Label(error, systemImage: "exclamationmark.triangle")
                .font(.footnote)
                .foregroundColor(.orange)
        }
        if let golden = camera.goldenSummary {
            Text(golden)
                .font(.caption)
                .foregroundColor(.secondary)
        }
    }
}

/// One class: its label, its score as a percentage and a bar.
private struct PredictionRow: View {
    let prediction: Prediction

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            HStack {
                Text(prediction.label)
                    .lineLimit(1)
                Spacer()
                Text(String(format: "%.1f %%", prediction.score * 100))
                    .monospacedDigit()
            }
            ProgressView(value: min(max(prediction.score, 0), 1))
        }
    }
}
