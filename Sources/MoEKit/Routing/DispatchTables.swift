/// The seed dispatch operations (seeds 000 and 001) in MoEKit's form.
public enum DispatchTables {
    /// `prepare_moe_mapping_tensor`: the dense `[T, E]` matrix whose (t, e) entry is token t's weight
    /// for expert e, and 0 where t is not routed to e.
    public static func prepareMoEMappingTensor(_ routes: RouteAssignments) -> Tensor<Float> {
        let (t, k, e) = (routes.tokenCount, routes.expertsPerToken, routes.expertCount)
        var mapping = Tensor<Float>(shape: [t, e], repeating: 0)
        for row in 0..<t {
            for slot in 0..<k {
                mapping.storage[row * e + Int(routes.expertIDs[row * k + slot])] = routes.weights[row * k + slot]
            }
        }
        return mapping
    }

    /// `prepare_moe_routing_tensors` per device, experts distributed equally: device d owns global experts
    /// d·E/D … (d+1)·E/D − 1 and its local expert l is global expert d·E/D + l.
    /// - Returns: counts `[D, E/D]`, token table `[D, E/D, T]` (ascending token order, padded with
    ///   `0xFFFFFFFF`) and weight table `[D, E/D, T]` (padded with 0). T columns suffice because a token
    ///   picks an expert at most once.
    /// - Throws: ``RoutingError/expertsNotDivisible(expertCount:deviceCount:)`` or a bad device count.
    public static func prepareMoERoutingTensors(_ routes: RouteAssignments, deviceCount: Int = 1) throws(RoutingError) -> MoERoutingTensors {
        guard deviceCount >= 1 else { throw .invalidCount(name: "devices", value: deviceCount, reason: "must be at least 1") }
        let (t, k, e) = (routes.tokenCount, routes.expertsPerToken, routes.expertCount)
        guard e % deviceCount == 0 else { throw .expertsNotDivisible(expertCount: e, deviceCount: deviceCount) }
        let local = e / deviceCount
        // Global expert g sits at (d, l) = (g / local, g % local): the flat [D, E/D] index is g itself.
        var counts = Tensor<UInt32>(shape: [deviceCount, local], repeating: 0)
        var tokens = Tensor<UInt32>(shape: [deviceCount, local, t], repeating: MoERoutingTensors.paddingToken)
        var weights = Tensor<Float>(shape: [deviceCount, local, t], repeating: 0)
        for row in 0..<t {  // ascending token order fills each expert's table in token order
            for slot in 0..<k {
                let g = Int(routes.expertIDs[row * k + slot])
                let column = Int(counts.storage[g])
                tokens.storage[g * t + column] = UInt32(row)
                weights.storage[g * t + column] = routes.weights[row * k + slot]
                counts.storage[g] += 1
            }
        }
        return MoERoutingTensors(numRoutedTokens: counts, routedTokens: tokens, routedTokenWeights: weights)
    }
}

/// The three outputs of `prepare_moe_routing_tensors`, per device.
public struct MoERoutingTensors: Sendable, Equatable {
    /// The token-table padding value.
    public static let paddingToken: UInt32 = 0xFFFF_FFFF
    /// `[D, E/D]`: tokens routed to local expert e of device d.
    public var numRoutedTokens: Tensor<UInt32>
    /// `[D, E/D, T]`: their token indices in ascending order, then ``paddingToken``.
    public var routedTokens: Tensor<UInt32>
    /// `[D, E/D, T]`: the matching weights, then 0.
    public var routedTokenWeights: Tensor<Float>
}
