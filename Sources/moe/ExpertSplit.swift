import MoEKit

/// Refuses `flag` (`--devices 3`, `--mesh 3x1`) unless its `groups` split `expertCount` experts into equal
/// shards, before anything is made for them.
/// - Parameters:
///   - symbol: what the message calls the group count: `D` (devices) or `EP` (a mesh's expert groups).
///   - experts: how the message names the experts (default "the E experts").
/// - Throws: ``CLIError/invalidOption(_:)`` naming the flag, the value and the counts that would work.
func checkExpertSplit(_ expertCount: Int, over groups: Int, flag: String, symbol: String = "D", experts: String? = nil) throws(CLIError) {
    guard expertCount >= 1, expertCount % groups != 0 else { return }  // a config with no experts is refused where it is read
    let counts = (1...min(expertCount, Flags.devices.bounds.upperBound)).filter { expertCount % $0 == 0 }.map(String.init)
    throw .invalidOption("\(flag) does not split \(experts ?? "the \(expertCount) experts") equally "
                         + "(E must be divisible by \(symbol); \(symbol) may be \(counts.joined(separator: ", ")))")
}

extension MoEConfig {
    /// Refuses `--devices D` or `--mesh EPxTP` (whichever is given) unless D or EP divides the block's experts;
    /// made once the model's config is read, before any weight is made or read.
    /// - Throws: ``CLIError/invalidOption(_:)``, as ``checkExpertSplit(_:over:flag:symbol:experts:)``.
    func checkExpertParallel(devices: Int, mesh: MeshShape?) throws(CLIError) {
        if let mesh {
            try checkExpertSplit(expertCount, over: mesh.expertParallel, flag: "--mesh \(mesh)", symbol: "EP")
        } else {
            try checkExpertSplit(expertCount, over: devices, flag: "--devices \(devices)")
        }
    }
}
