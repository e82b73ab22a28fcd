import CMoEKernels
import Foundation
@testable import MoEKit
import MoETestSupport
import Testing

/// CPU feature detection (CPUID + XCR0 + Linux's AMX permission), the `MOEKIT_ISA` names and the kernel
/// selection rule, on this machine and on synthetic feature sets.
@Suite("CPU features and kernel selection")
struct CPUFeaturesTests {
    // MARK: Detection

    #if os(Linux)
    /// The `flags` of the first processor in `/proc/cpuinfo`.
    static func cpuinfoFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
        let value = try #require(line.split(separator: ":", maxSplits: 1).last)
        return Set(value.split(separator: " ").map(String.init))
    }

    @Test("detection agrees with /proc/cpuinfo, feature by feature")
    func matchesProcCpuinfo() throws {
        let flags = try Self.cpuinfoFlags()
        for (feature, name) in CPUFeatures.named {
            #expect(CPUFeatures.detected.contains(feature) == flags.contains(name), "\(name): detected \(CPUFeatures.detected)")
        }
    }
    #endif

    @Test("what the OS enables is a subset of what CPUID reports")
    func usableWithinReported() {
        #expect(CPUFeatures.reported.isSuperset(of: CPUFeatures.detected))
    }

    @Test("the level from the features is the compiler runtime's moe_cpu_level, AMX aside")
    func levelMatchesCompilerRuntime() {
        #expect(ISALevel.best(CPUFeatures.detected, amxPermitted: false).rawValue == Int(moe_cpu_level()))
    }

    @Test("AMX on this machine: the reason is stated, and nothing runs AMX")
    func amxOnThisMachine() {
        let amx: CPUFeatures = [.amxTile, .amxBF16]
        if CPUFeatures.reported.isDisjoint(with: amx) {
            #expect(CPUFeatures.amxUnavailableReason == "the CPU has no AMX")
            #expect(ISALevel.machine < .amxBF16)
        }
        if let reason = CPUFeatures.amxUnavailableReason { #expect(KernelSelection.amxFallbackReason == reason) }
        // No AMX kernel is built, so there is always a fallback reason and the running level stops below AMX.
        #expect(KernelSelection.amxFallbackReason != nil)
        #expect(KernelSelection.runningLevel <= .avx512BF16)
        print("CPU features: \(CPUFeatures.detected) (CPUID: \(CPUFeatures.reported)); level \(ISALevel.machine); "
              + "AMX: \(CPUFeatures.amxUnavailableReason ?? "available"); fast kernels: \(ExpertWeights.kernelISA)")
    }

    /// Counts permission requests and answers with a fixed code.
    final class PermissionProbe: @unchecked Sendable {
        var calls = 0
        let code: Int32
        init(_ code: Int32) { self.code = code }
        func request() -> Int32 { calls += 1; return code }
    }

    @Test("the AMX reason for synthetic CPUs, OSes, permissions and MOEKIT_ISA values")
    func amxReasons() {
        let amx: CPUFeatures = [.avx2, .fma, .f16c, .avx512f, .avx512bf16, .amxTile, .amxBF16]
        let noAMX: CPUFeatures = [.avx2, .fma, .f16c, .avx512f, .avx512bf16]
        func reason(_ reported: CPUFeatures, _ usable: CPUFeatures, forced: String? = nil, code: Int32 = 0) -> (String?, Int) {
            let probe = PermissionProbe(code)
            return (CPUFeatures.amxReason(reported: reported, usable: usable, forced: forced, requestPermission: probe.request), probe.calls)
        }
        // Without AMX in CPUID, nothing is asked of the kernel.
        #expect(reason(noAMX, noAMX) == ("the CPU has no AMX", 0))
        #expect(reason(noAMX.union(.amxTile), noAMX.union(.amxTile)) == ("the CPU has AMX tiles but no AMX-BF16", 0))
        #expect(reason(amx, noAMX) == ("the OS does not enable AMX tile state (XCR0 bits 17/18 clear)", 0))
        // A lower MOEKIT_ISA turns AMX off before the permission is asked; amx-bf16 and unknown names do not.
        #expect(reason(amx, amx, forced: "avx512") == ("forced off by MOEKIT_ISA=avx512", 0))
        #expect(reason(amx, amx, forced: "AVX512-BF16") == ("forced off by MOEKIT_ISA=AVX512-BF16", 0))
        #expect(reason(amx, amx, forced: "amx-bf16") == (nil, 1))
        #expect(reason(amx, amx, forced: "turbo") == (nil, 1))
        // The permission: granted, refused (errno), not Linux, granted but not listed.
        #expect(reason(amx, amx) == (nil, 1))
        let eperm = reason(amx, amx, code: EPERM)
        #expect(eperm.0?.hasPrefix("the kernel refused AMX tile data (arch_prctl: ") == true)
        #expect(eperm.0?.hasSuffix("errno \(EPERM))") == true)
        #expect(eperm.1 == 1)
        #expect(reason(amx, amx, code: Int32(MOE_AMX_PERMISSION_UNSUPPORTED)).0 == "no AMX permission request on this OS (Linux's arch_prctl only)")
        #expect(reason(amx, amx, code: Int32(MOE_AMX_PERMISSION_NOT_LISTED)).0?.hasPrefix("the kernel refused AMX tile data") == true)
    }

    // MARK: Levels and MOEKIT_ISA names

    @Test("MOEKIT_ISA names parse, in any case, and name their level back")
    func namesParse() {
        for level in ISALevel.allCases { #expect(ISALevel(name: level.name) == level) }
        #expect(ISALevel(name: "swift") == .portable)
        #expect(ISALevel(name: "portable") == .portable)
        #expect(ISALevel(name: "AVX2") == .avx2)
        #expect(ISALevel(name: "avx512") == .avx512)
        #expect(ISALevel(name: "Avx512-BF16") == .avx512BF16)
        #expect(ISALevel(name: "amx-bf16") == .amxBF16)
        #expect(ISALevel(name: "amx") == nil)
        #expect(ISALevel(name: "") == nil)
        #expect(ISALevel.allCases.map(\.name) == ["swift", "avx2", "avx512", "avx512-bf16", "amx-bf16"])
        #expect(ISALevel.allCases.map(\.rawValue) == [0, 1, 2, 3, 4])
    }

    @Test("MOEKIT_ISA=amx-bf16 caps nothing: every level the kernels have is below it")
    func amxNameCapsNothing() throws {
        let amx = try #require(ISALevel(name: "amx-bf16"))
        for cpu in 0...3 { #expect(min(cpu, amx.rawValue) == cpu) }
        #expect(TileKernel.ISA.level <= Int(moe_cpu_level()))
    }

    @Test("the best level of synthetic feature sets")
    func bestLevel() {
        #expect(ISALevel.best([], amxPermitted: true) == .portable)
        #expect(ISALevel.best([.avx2], amxPermitted: true) == .portable)  // AVX2 kernels need FMA
        #expect(ISALevel.best([.avx2, .fma, .f16c], amxPermitted: true) == .avx2)
        #expect(ISALevel.best([.avx2, .fma, .avx512f], amxPermitted: true) == .avx512)
        #expect(ISALevel.best([.avx512bf16], amxPermitted: true) == .portable)
        let zen4: CPUFeatures = [.avx2, .fma, .f16c, .avx512f, .avx512bf16]
        let sapphireRapids = zen4.union([.amxTile, .amxBF16])
        #expect(ISALevel.best(zen4, amxPermitted: true) == .avx512BF16)
        #expect(ISALevel.best(sapphireRapids, amxPermitted: true) == .amxBF16)
        #expect(ISALevel.best(sapphireRapids, amxPermitted: false) == .avx512BF16)
        #expect(ISALevel.best([.avx2, .fma, .avx512f, .amxTile, .amxBF16], amxPermitted: true) == .avx512)
    }

    // MARK: Selection

    static let rowCounts = [1, 2, 4, 7, 8, 16, 31, 32, 33, 64, 128, 192]
    static let depths = [1, 16, 31, 32, 300, 1024, 14336]

    /// Today's choice, written out: F32 compute by ISA; BF16 compute `vdpbf16ps` or the portable pair loop.
    static func today(_ level: ISALevel, _ compute: ComputeMode) -> KernelFamily {
        switch compute {
        case .f32: level >= .avx512 ? .avx512 : level == .avx2 ? .avx2 : .portable
        case .bf16: level >= .avx512BF16 ? .avx512BF16 : .portable
        case .int8: level >= .avx512 ? .avx512VNNI : level == .avx2 ? .avx2 : .portable
        }
    }

    @Test("without AMX the selection is today's choice, whatever the shape")
    func selectionWithoutAMX() {
        for level in ISALevel.allCases where level < .amxBF16 {
            for compute in ComputeMode.allCases {
                for rows in Self.rowCounts {
                    for depth in Self.depths {
                        let family = KernelSelection.family(level: level, compute: compute, rows: rows, depth: depth, columns: 32)
                        #expect(family == Self.today(level, compute), "\(level) \(compute) rows \(rows) depth \(depth)")
                    }
                }
            }
        }
    }

    @Test("on this machine the selection names the kernels TileKernel runs")
    func selectionMatchesTileKernel() {
        let level = KernelSelection.runningLevel
        let f32: KernelFamily = switch TileKernel.ISA.detected {
        case .avx512: .avx512
        case .avx2: .avx2
        case .portable: .portable
        }
        let bf16: KernelFamily = TileKernel.hasBF16Dot ? .avx512BF16 : .portable
        for rows in Self.rowCounts {
            #expect(KernelSelection.family(level: level, compute: .f32, rows: rows, depth: 1024, columns: 32) == f32)
            #expect(KernelSelection.family(level: level, compute: .bf16, rows: rows, depth: 1024, columns: 32) == bf16)
        }
    }

    @Test("with AMX: BF16 compute above the row and depth thresholds, F32 compute never")
    func selectionWithAMX() {
        let (minRows, minDepth) = (KernelSelection.amxMinimumRows, KernelSelection.amxMinimumDepth)
        for rows in Self.rowCounts {
            for depth in Self.depths {
                let bf16 = KernelSelection.family(level: .amxBF16, compute: .bf16, rows: rows, depth: depth, columns: 32)
                #expect(bf16 == (rows >= minRows && depth >= minDepth ? .amxBF16 : .avx512BF16), "rows \(rows) depth \(depth)")
                #expect(KernelSelection.family(level: .amxBF16, compute: .f32, rows: rows, depth: depth, columns: 32) == .avx512)
            }
        }
        #expect(KernelSelection.family(level: .amxBF16, compute: .bf16, rows: 192, depth: 1024, columns: 8) == .avx512BF16)
        // The chain from a synthetic Sapphire Rapids: permitted → AMX at T = 512's rows, not at a decode step.
        let level = ISALevel.best([.avx2, .fma, .f16c, .avx512f, .avx512bf16, .amxTile, .amxBF16], amxPermitted: true)
        #expect(KernelSelection.family(level: level, compute: .bf16, rows: 128, depth: 4096, columns: 32) == .amxBF16)
        #expect(KernelSelection.family(level: level, compute: .bf16, rows: 1, depth: 4096, columns: 32) == .avx512BF16)
        #expect(KernelSelection.family(level: min(level, .avx512), compute: .bf16, rows: 128, depth: 4096, columns: 32) == .portable)
    }

    // MARK: moe bench

    @Test("moe bench states the AMX fallback (machine.amx) and MOEKIT_ISA=amx-bf16 changes no kernel", arguments: ["amx-bf16", "avx2"])
    func benchReportsAMX(_ forced: String) throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path + "/bench.json"
        let result = try MoEProcess.run(["bench", "--suite", "smoke", "--repeats", "1", "--threads", "1", "--filter", "T=1 f32", "--json", path],
                                        environment: ["MOEKIT_ISA": forced])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let machine = try #require(object?["machine"] as? [String: Any])
        #expect(machine.keys.contains("amx"))
        let amx = machine["amx"] as? String
        let isa = machine["isa"] as? String
        if forced == "amx-bf16" {
            #expect(isa == ExpertWeights.kernelISA)  // amx-bf16 caps nothing
            #expect(amx == KernelSelection.amxFallbackReason)
        } else {
            #expect(isa == (TileKernel.ISA.detected >= .avx2 ? "avx2" : "swift"))
            let reported = CPUFeatures.reported.isSuperset(of: [.amxTile, .amxBF16])
            #expect(amx == (reported && CPUFeatures.detected.isSuperset(of: [.amxTile, .amxBF16]) ? "forced off by MOEKIT_ISA=avx2" : KernelSelection.amxFallbackReason))
        }
        if let amx { #expect(result.stdout.contains("(no AMX: \(amx))")) }
    }
}
