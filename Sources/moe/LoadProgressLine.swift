import MoEKit

/// A progress line on stderr while a layer loads: only on a terminal, only once the load has taken
/// about a second, redrawn in place (`\r`) and ended with a newline when the load is done.
final class LoadProgressLine {
    private let start = ContinuousClock.now
    private var shown = false
    private var lastDraw = ContinuousClock.now

    /// A callback for ``Checkpoint/feedForward(layer:threads:residency:progress:)``, or `nil` when stderr is not a
    /// terminal or `quiet` (`--json`).
    static func make(quiet: Bool = false) -> ((LoadProgress) -> Void)? {
        guard !quiet, isatty(2) == 1 else { return nil }
        let line = LoadProgressLine()
        return { line.update($0) }
    }

    private func update(_ p: LoadProgress) {
        let now = ContinuousClock.now
        let done = p.matrices >= p.totalMatrices
        guard now - start > .seconds(1) else { return }
        guard done || now - lastDraw > .milliseconds(100) || !shown else { return }
        lastDraw = now
        shown = true
        let gb = { (bytes: Int) in format(Double(bytes) / 1e9, 2) }
        var text = "\rloading experts: \(gb(p.bytes)) of \(gb(p.totalBytes)) GB, \(p.matrices) of \(p.totalMatrices) matrices"
        if done { text += "\n" }
        _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}
