import SwiftUI

@main
struct MobileExportDemoApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
