import Foundation
import MoECost
import MoEKit
import MoETestSupport
import Testing

/// A hand-written `moe bench --json` file: roofs 200 GFLOP/s and 40 GB/s, 0.5 µs per region, one F32 case and one
/// BF16-compute case of the deepseek preset.
private let handBench = #"""
{
  "machine": {"gemm_gflops": 200, "mem_gbs": 40, "isa": "avx512", "threads": 2, "pool_region_us": 0.5},
  "cases": [
    {"name": "deepseek f32 T=128", "preset": "deepseek", "tokens": 128, "dtype": "f32", "compute": "f32",
     "hidden": 1024, "intermediate": 512, "experts": 64, "top_k": 6, "shared_intermediate": 512, "ms": 20,
     "gflops": 141.7},
    {"name": "deepseek bf16 bf16-compute T=512", "preset": "deepseek", "tokens": 512, "dtype": "bf16", "compute": "bf16",
     "hidden": 1024, "intermediate": 512, "experts": 64, "top_k": 6, "shared_intermediate": 512, "ms": 40,
     "gflops": 283.5}
  ]
}
"""#

private let mixtralConfig = costFixturesDirectory + "/mixtral-8x7b.json"

@Suite struct CostCalibrationTests {
    @Test func calibrationTakesTheBenchRoofs() throws {
        let path = try writeTemporaryFile(handBench, named: "bench.json")
        let c = try Calibration(benchFile: path, fitted: false)
        let p = c.profile
        #expect(p.name == "this-machine")
        #expect(p.peakFLOPS["f32"] == 200e9)
        #expect(p.memoryBandwidth == 40e9)
        #expect(p.linkBandwidth == 40e9)
        #expect(abs(p.regionOverhead! - 0.5e-6) < 1e-15)
        #expect(abs(p.launchOverhead - 1.5e-6) < 1e-15)
        #expect(p.computeEfficiency.isEmpty)
        // BF16 peak: the BF16-compute case's rate with the bench's own FLOP formula.
        let router: Double = 2 * 512 * 1024 * 64, routed: Double = 6 * 1024 * 512 * 512 * 6, shared: Double = 6 * 512 * 1024 * 512
        let flops = router + routed + shared
        #expect(abs(p.peakFLOPS["bf16"]! - flops / 0.040) / (flops / 0.040) < 1e-12)
        #expect(c.bf16PeakSource.contains("deepseek bf16 bf16-compute T=512"))
    }

    @Test func quantizedBenchCasesAreLeftOut() throws {
        let quantized = #"{"name": "deepseek fp8 T=128", "preset": "deepseek", "tokens": 128, "dtype": "fp8", "compute": "f32", "hidden": 1024, "intermediate": 512, "experts": 64, "top_k": 6, "shared_intermediate": 512, "ms": 22}"#
        let text = handBench.replacingOccurrences(of: #""cases": ["#, with: #""cases": ["# + quantized + ",")
        let bench = try BenchResults(contentsOf: try writeTemporaryFile(text, named: "bench.json"))
        #expect(bench.cases.map(\.dtype) == ["f32", "bf16"])
    }

    @Test func bf16PeakIsTwiceF32WithoutABF16ComputeCase() throws {
        let bench = BenchResults(machine: .init(gemmGFLOPS: 100, memoryGBs: 20, regionMicroseconds: 1), cases: [])
        let c = try Calibration(bench)
        #expect(c.profile.peakFLOPS["bf16"] == 200e9)
        #expect(c.bf16PeakSource.hasPrefix("2 × f32"))
        #expect(c.fittedEfficiency.isEmpty)
    }

    @Test func fittedEfficiencyIsReportedAndBringsPredictionsToTheMeasurement() throws {
        let path = try writeTemporaryFile(handBench, named: "bench.json")
        let c = try Calibration(benchFile: path)
        let eff = try #require(c.fittedEfficiency["f32"])
        #expect(eff > 0 && eff <= 2)
        #expect(c.profile.source?.contains("FITTED") == true)
        // One case per dtype: the fit reproduces each measurement.
        let block = try BlockShape.preset("deepseek")
        let predicted = BlockTime(BlockEstimate(block, tokens: 128), on: c.profile).predictedMilliseconds
        #expect(abs(predicted / 20 - 1) < 0.01)
        // The profile round-trips through its JSON file.
        let saved = path + ".profile.json"
        try c.save(to: saved)
        #expect(try HardwareProfile.named(saved) == c.profile)
        #expect(try HardwareProfile.named("this-machine", thisMachinePath: saved) == c.profile)
    }

    @Test func blockFormulasOnAHandCase() throws {
        // H 64, F 96, E 4, K 2, shared 32, F32; T = 8.
        let block = try BlockShape(hidden: 64, intermediate: 96, experts: 4, topK: 2, sharedIntermediate: 32)
        let e = BlockEstimate(block, tokens: 8)
        #expect(e.routerFLOPs == Double(2 * 8 * 64 * 4))
        #expect(e.routedFLOPs == Double(6 * 64 * 96 * 16))
        #expect(e.sharedFLOPs == Double(6 * 8 * 64 * 32))
        let touched = 4 * (1 - pow(0.5, 8.0))
        #expect(abs(e.expertsTouched - touched) < 1e-12)
        let expertBytes: Double = 3 * 64 * 96 * 4, routerBytes: Double = 4 * 64 * 4, sharedBytes: Double = 3 * 64 * 32 * 4
        #expect(abs(e.weightBytes - (touched * expertBytes + routerBytes + sharedBytes)) < 1e-6)
        // Per row: input tile (H) and intermediate tile (F), the row's output written and read (2H); then T·H.
        let routerActivations: Double = 8 * 64 + 8 * 4
        let routedActivations: Double = 16 * (64 + 96 + 2 * 64) + 8 * 64
        let sharedActivations: Double = 8 * (64 + 32 + 2 * 64) + 8 * 64
        #expect(e.activationBytes == 4 * (routerActivations + routedActivations + sharedActivations))
        #expect(e.regions == 10)
        let bf16 = BlockEstimate(try BlockShape(hidden: 64, intermediate: 96, experts: 4, topK: 2, weightDType: .bf16, computeDType: .bf16),
                                 tokens: 8)
        #expect(bf16.regions == 6)
        // BF16 compute: the two tiles are bf16 pairs, half the bytes.
        let bf16Router: Double = 4 * (8 * 64 + 8 * 4), bf16Routed: Double = 16 * (2 * (64 + 96) + 4 * 2 * 64) + 4 * 8 * 64
        #expect(bf16.activationBytes == bf16Router + bf16Routed)
        // Executed rows: 1-, 2-, 4-, 8-row tile variants.
        #expect([0, 1, 2, 3, 4, 5, 8, 9, 13].map { BlockEstimate.executedRows($0, tile: 8) } == [0, 1, 2, 4, 4, 8, 8, 9, 16])
        #expect(BlockEstimate.expectedPaddedRows(tokens: 8, probability: 1, tile: 8) == 8)
        // p = 1/2 over 2 tokens: 0, 1, 2 rows with 1/4, 1/2, 1/4.
        #expect(abs(BlockEstimate.expectedPaddedRows(tokens: 2, probability: 0.5, tile: 8) - 1) < 1e-12)
        // Time on a plain profile: max(compute, memory) + regions × region overhead.
        var p = HardwareProfile(name: "x", peakFLOPS: [.f32: 1e9], memoryBandwidth: 1e9, linkBandwidth: 1e9, launchOverhead: 1e-3)
        p.regionOverhead = 1e-6
        let t = BlockTime(e, on: p)
        #expect(abs(t.computeSeconds - (e.executedRouterFLOPs + e.executedExpertFLOPs) / 1e9) < 1e-15)
        #expect(abs(t.memorySeconds - e.bytes / 1e9) < 1e-15)
        #expect(abs(t.predictedMilliseconds - (max(t.computeSeconds, t.memorySeconds) + 10e-6) * 1e3) < 1e-12)  // 10 regions
        // Router: rows to the tile variant, E to the 32-column panel.
        #expect(e.executedRouterFLOPs == Double(2 * 8 * 64 * 32))
    }

    @Test func presetsMatchTheBench() throws {
        let q = try BlockShape.preset("qwen3", weightDType: .bf16, computeDType: .bf16)
        #expect(q.hidden == 2048 && q.intermediate == 768 && q.experts == 128 && q.topK == 8 && q.sharedIntermediate == 0)
        #expect(q.modeName == "bf16 bf16-compute")
        #expect(throws: CostError.self) { try BlockShape.preset("gpt5") }
        #expect(throws: CostError.self) { try BlockShape(hidden: 8, intermediate: 8, experts: 2, topK: 3) }
    }

    @Test func plotIsWellFormedSVG() throws {
        let shape = try ModelShape(contentsOf: mixtralConfig)
        let profiles = HardwareProfile.builtIn
        let plot = TimePlot(title: "mixtral <test>", series: profiles.map { p in
            TimePlot.Series(name: p.name, points: TimePlot.defaultTokens.map { t in
                (Double(t), WorkEstimate(shape, tokens: t).layers.reduce(0) { $0 + LayerTime($1, on: p).predictedMilliseconds })
            })
        })
        let svg = plot.svg()
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == profiles.count)
        #expect(svg.contains("mixtral &lt;test&gt;"))
        for p in profiles { #expect(svg.contains(">\(p.name)</text>")) }
        // Well-formed by construction: one root, every other element self-closed or closed on its line.
        #expect(svg.components(separatedBy: "<svg").count == 2 && svg.components(separatedBy: "</svg>").count == 2)
        for line in svg.split(separator: "\n").dropFirst().dropLast() {
            #expect(line.hasPrefix("<") && (line.hasSuffix("/>") || line.hasSuffix("</text>")), "\(line)")
        }
        #expect(!svg.contains("nan") && !svg.contains("inf"))
    }

    @Test(arguments: [
        ("{", "not a moe bench --json file"),
        (#"{"cases": []}"#, "missing key 'machine'"),
        (#"{"machine": {"gemm_gflops": 0, "mem_gbs": 30}, "cases": []}"#, "machine.gemm_gflops"),
        (#"{"machine": {"gemm_gflops": 100, "mem_gbs": -1}, "cases": []}"#, "machine.mem_gbs"),
        (#"{"machine": {"gemm_gflops": 100, "mem_gbs": 30}, "cases": [{"name": "x", "preset": "x", "tokens": 4, "dtype": "f8", "compute": "f32", "hidden": 8, "intermediate": 8, "experts": 2, "top_k": 1, "shared_intermediate": 0, "ms": 1}]}"#, "dtype"),
        (#"{"machine": {"gemm_gflops": 100, "mem_gbs": 30}, "cases": [{"name": "x", "preset": "x", "tokens": 4, "dtype": "f32", "compute": "f32", "hidden": 8, "intermediate": 8, "experts": 2, "top_k": 1, "shared_intermediate": 0, "ms": 0}]}"#, "ms"),
    ])
    func badBenchFilesAreCostErrors(text: String, expected: String) throws {
        let path = try writeTemporaryFile(text, named: "bad.json")
        do {
            _ = try Calibration(benchFile: path)
            Issue.record("no error for \(text)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
        #expect(throws: CostError.self) { try Calibration(benchFile: path + ".missing") }
    }

    @Test func thisMachineWithoutCalibrationSaysHowToCalibrate() {
        do {
            _ = try HardwareProfile.named("this-machine", thisMachinePath: "/nonexistent/this-machine.json")
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("--calibrate"))
        }
    }

    // MARK: the built moe executable

    @Test func estimateJSONFromTheCLI() throws {
        let result = try MoEProcess.run(["estimate", "--config", mixtralConfig, "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let shape = try ModelShape(contentsOf: mixtralConfig)
        let count = ParameterCount(shape)
        #expect(object["total_params"] as? Int == count.total)
        #expect(object["total_params"] as? Int == 46_702_792_704)
        #expect(object["active_params"] as? Int == count.active)
        #expect((object["layers"] as? [Any])?.count == 32)
    }

    @Test func calibrateAndPredictFromTheCLI() throws {
        let bench = try writeTemporaryFile(handBench, named: "bench.json")
        let profile = bench + ".profile.json"
        let cal = try MoEProcess.run(["estimate", "--calibrate", bench, "--save-profile", profile, "--json"])
        #expect(cal.status == 0, "stderr: \(cal.stderr)")
        #expect(cal.stdout.contains("fitted_compute_efficiency"))
        let svg = bench + ".svg"
        let run = try MoEProcess.run(["estimate", "--bench-case", bench, "--hardware", profile, "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect((object["cases"] as? [Any])?.count == 2)
        let plotted = try MoEProcess.run(["estimate", "--preset", "qwen3", "--tokens", "16", "--hardware", profile, "--plot", svg])
        #expect(plotted.status == 0, "stderr: \(plotted.stderr)")
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(text.hasPrefix("<svg"))
        #expect(text.components(separatedBy: "<polyline").count - 1 == HardwareProfile.builtIn.count + 1)
    }

    @Test(arguments: [["estimate"], ["estimate", "--calibrate", "/nonexistent/bench.json"], ["estimate", "--preset", "gpt5"]])
    func badEstimateInvocationsEndInOneLine(arguments: [String]) throws {
        let result = try MoEProcess.run(arguments)
        #expect(result.exitedNormally)
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("moe: error: "))
    }
}
