// Builds the seed dispatch tables for a routed batch, then runs the same MoE block expert-parallel over four
// in-process devices (device d owns experts d·E/4 ..< (d+1)·E/4) and checks it against one device, bit for bit.
//   swift run expert-parallel
import Foundation
import MoEKit

do {
    let config = try ModelConfig.preset(named: "mixtral").moe
    let block = try MoEBlock.random(config: config, seed: 7)
    var random = SplitMix64(seed: 8)
    let hidden = random.tensor([32, config.hiddenSize], std: 1)

    // The seed operations: the token → expert mapping and the per-device routing tables.
    let single = try block.forward(hidden, threads: 2)
    let routes = RouteAssignments(single.routing, expertCount: config.expertCount)
    let mapping = DispatchTables.prepareMoEMappingTensor(routes)
    let tables = try DispatchTables.prepareMoERoutingTensors(routes, deviceCount: 4)
    print("mapping \(mapping.shape), routed tokens per expert \(tables.numRoutedTokens.storage)")

    // The same block over four devices: all-to-all dispatch, local experts, all-to-all combine.
    let parallel = try ExpertParallelMoE(block: block, deviceCount: 4)
    let (output, traffic) = try parallel.forward(hidden, threads: 1)
    let same = output.hiddenStates.storage == single.hiddenStates.storage
    print("4 devices: \(traffic.remoteRows) rows sent to other devices, \(traffic.dispatchBytes + traffic.combineBytes) bytes; "
          + "output bit-identical to one device: \(same)")
    if !same { exit(1) }
} catch {
    print("expert-parallel: error: \(error)")
    exit(1)
}
