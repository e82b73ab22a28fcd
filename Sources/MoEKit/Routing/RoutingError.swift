/// Bad routing input: what a caller or a file put into `selected_experts` / `routing_weights`.
public enum RoutingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The routing tensors have the wrong rank or disagree in shape; the string says how.
    case shapeMismatch(String)
    /// `selected_experts[token, slot]` names an expert outside `0..<expertCount`.
    case expertOutOfRange(token: Int, slot: Int, expert: Int64, expertCount: Int)
    /// A token names the same expert in two slots.
    case duplicateExpert(token: Int, expert: Int64, firstSlot: Int, secondSlot: Int)
    /// `routing_weights[token, slot]` is NaN or infinite.
    case nonFiniteWeight(token: Int, slot: Int, value: Float)
    /// Element `index` of an input tensor (`hidden_states`) is NaN or infinite.
    case nonFiniteInput(tensor: String, index: Int, value: Float)
    /// E experts cannot be split equally over D devices.
    case expertsNotDivisible(expertCount: Int, deviceCount: Int)
    /// A count (`num_experts`, `devices`) outside its range; `reason` says which.
    case invalidCount(name: String, value: Int, reason: String)

    /// One line naming the tensor, token, slot or count and the value at fault.
    public var description: String {
        switch self {
        case .shapeMismatch(let what): "shape mismatch: \(what)"
        case .expertOutOfRange(let t, let k, let e, let count):
            "selected_experts[\(t), \(k)] = \(e) is outside 0..<\(count) (the number of experts)"
        case .duplicateExpert(let t, let e, let first, let second):
            "selected_experts row \(t) names expert \(e) twice (slots \(first) and \(second)); each token picks an expert at most once"
        case .nonFiniteWeight(let t, let k, let v): "routing_weights[\(t), \(k)] = \(v) is not finite"
        case .nonFiniteInput(let name, let i, let v): "\(name) element \(i) = \(v) is not finite"
        case .expertsNotDivisible(let e, let d):
            "\(e) experts cannot be distributed equally over \(d) devices (E must be divisible by D)"
        case .invalidCount(let name, let value, let reason): "\(name) = \(value) \(reason)"
        }
    }
}
