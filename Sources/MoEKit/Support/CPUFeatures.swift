import CMoEKernels

/// The CPU features MoEKit's kernels may use, read once from CPUID and the registers the OS saves (XCR0),
/// so a feature the hypervisor or kernel leaves disabled is not reported (as Linux's `/proc/cpuinfo`).
/// AMX also needs Linux's per-process permission: ``amxUnavailableReason`` asks for it.
public struct CPUFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The feature bits (`MOE_CPU_*` of `moe_cpu.h`).
    public let rawValue: UInt32
    /// The set of feature bits `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// AVX2.
    public static let avx2 = CPUFeatures(rawValue: UInt32(MOE_CPU_AVX2))
    /// FMA3 (fused multiply-add), which the AVX2 kernels need too.
    public static let fma = CPUFeatures(rawValue: UInt32(MOE_CPU_FMA))
    /// F16C (half ↔ single conversions).
    public static let f16c = CPUFeatures(rawValue: UInt32(MOE_CPU_F16C))
    /// AVX-512 Foundation.
    public static let avx512f = CPUFeatures(rawValue: UInt32(MOE_CPU_AVX512F))
    /// AVX-512 BF16 (`vdpbf16ps`).
    public static let avx512bf16 = CPUFeatures(rawValue: UInt32(MOE_CPU_AVX512BF16))
    /// AMX tiles.
    public static let amxTile = CPUFeatures(rawValue: UInt32(MOE_CPU_AMX_TILE))
    /// AMX-BF16 (`tdpbf16ps`).
    public static let amxBF16 = CPUFeatures(rawValue: UInt32(MOE_CPU_AMX_BF16))
    /// AVX-512 BW (byte and word lanes), which the integer kernels need beside AVX-512 F.
    public static let avx512bw = CPUFeatures(rawValue: UInt32(MOE_CPU_AVX512BW))
    /// AVX-512 VNNI (`vpdpbusd` on zmm): the `--compute int8` kernels.
    public static let avx512vnni = CPUFeatures(rawValue: UInt32(MOE_CPU_AVX512VNNI))
    /// AVX-VNNI (`vpdpbusd` on ymm, VEX-encoded).
    public static let avxvnni = CPUFeatures(rawValue: UInt32(MOE_CPU_AVXVNNI))
    /// AMX-INT8 (`tdpbusd`).
    public static let amxInt8 = CPUFeatures(rawValue: UInt32(MOE_CPU_AMX_INT8))

    /// Each feature under its `/proc/cpuinfo` name.
    public static let named: [(feature: CPUFeatures, name: String)] = [
        (.avx2, "avx2"), (.fma, "fma"), (.f16c, "f16c"), (.avx512f, "avx512f"), (.avx512bf16, "avx512_bf16"),
        (.amxTile, "amx_tile"), (.amxBF16, "amx_bf16"), (.avx512bw, "avx512bw"), (.avx512vnni, "avx512_vnni"),
        (.avxvnni, "avx_vnni"), (.amxInt8, "amx_int8"),
    ]

    /// The `/proc/cpuinfo` names of the features in the set, space-separated.
    public var description: String { Self.named.filter { contains($0.feature) }.map(\.name).joined(separator: " ") }

    /// What CPUID reports and the OS enables (XCR0), read once. AMX here does not mean the permission.
    public static let detected: CPUFeatures = CPUFeatures(rawValue: moe_cpu_detect().usable)

    /// What CPUID reports, whether or not the OS saves the registers.
    public static let reported: CPUFeatures = CPUFeatures(rawValue: moe_cpu_detect().cpuid)

    /// Why AMX-BF16 cannot run in this process, or `nil` when it can: the CPU has it, the OS enables its
    /// state, `MOEKIT_ISA` does not name a lower level, and Linux granted the tile-data permission (asked
    /// once, the first time this is read, and only when everything else allows AMX).
    public static let amxUnavailableReason: String? = amxReason(reported: reported, usable: detected,
                                                                forced: ISALevel.forcedName,
                                                                requestPermission: { moe_amx_request_permission() })

    /// The reason for given facts (pure but for `requestPermission`, which is called only when the answer
    /// depends on it): `forced` is the `MOEKIT_ISA` value, `requestPermission` returns
    /// `moe_amx_request_permission`'s code.
    static func amxReason(reported: CPUFeatures, usable: CPUFeatures, forced: String?,
                          requestPermission: () -> Int32) -> String? {
        let amx: CPUFeatures = [.amxTile, .amxBF16]
        if reported.isDisjoint(with: amx) { return "the CPU has no AMX" }
        if !reported.contains(.amxBF16) { return "the CPU has AMX tiles but no AMX-BF16" }
        if !reported.contains(.amxTile) { return "the CPU reports AMX-BF16 without AMX tiles" }
        if !usable.isSuperset(of: amx) { return "the OS does not enable AMX tile state (XCR0 bits 17/18 clear)" }
        if let forced, let level = ISALevel(name: forced), level < .amxBF16 { return "forced off by MOEKIT_ISA=\(forced)" }
        switch requestPermission() {
        case Int32(MOE_AMX_PERMISSION_GRANTED): return nil
        case Int32(MOE_AMX_PERMISSION_UNSUPPORTED): return "no AMX permission request on this OS (Linux's arch_prctl only)"
        case Int32(MOE_AMX_PERMISSION_NOT_LISTED):
            return "the kernel refused AMX tile data (arch_prctl: granted, but ARCH_GET_XCOMP_PERM does not list XTILEDATA)"
        case let code:
            let message = strerror(code).map { String(cString: $0) } ?? "error"
            return "the kernel refused AMX tile data (arch_prctl: \(message), errno \(code))"
        }
    }
}

/// The instruction-set levels of MoEKit's kernels, best last, under the names `MOEKIT_ISA` accepts and
/// `moe bench` reports (`machine.isa`). The raw values are those of the C kernels' `moe_cpu_level()`.
public enum ISALevel: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// Portable Swift (`swift`): any CPU, arm64 included.
    case portable = 0
    /// AVX2 + FMA (`avx2`): F32 compute over every stored format.
    case avx2 = 1
    /// AVX-512 F (`avx512`): F32 compute over every stored format.
    case avx512 = 2
    /// AVX-512 with BF16 dot products (`avx512-bf16`): `vdpbf16ps` for BF16 compute.
    case avx512BF16 = 3
    /// AMX-BF16 (`amx-bf16`): detected and reported; this build has no AMX kernels, so nothing runs it.
    case amxBF16 = 4

    /// Orders levels by capability, `portable` lowest.
    public static func < (a: ISALevel, b: ISALevel) -> Bool { a.rawValue < b.rawValue }

    /// A `MOEKIT_ISA` name (any case): `swift` (or `portable`), `avx2`, `avx512`, `avx512-bf16`, `amx-bf16`.
    public init?(name: String) {
        switch name.lowercased() {
        case "swift", "portable": self = .portable
        case "avx2": self = .avx2
        case "avx512": self = .avx512
        case "avx512-bf16": self = .avx512BF16
        case "amx-bf16": self = .amxBF16
        default: return nil
        }
    }

    /// The name `MOEKIT_ISA` accepts and `moe bench` reports.
    public var name: String {
        switch self {
        case .portable: "swift"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .avx512BF16: "avx512-bf16"
        case .amxBF16: "amx-bf16"
        }
    }

    /// The ``name``.
    public var description: String { name }

    /// The best level a CPU with these features runs: AVX2 needs FMA too, AVX-512 BF16 needs AVX-512F, and
    /// AMX-BF16 needs AMX tiles, AVX-512 BF16 (the small-T path beside it) and the OS's permission.
    public static func best(_ features: CPUFeatures, amxPermitted: Bool) -> ISALevel {
        if features.contains([.avx512f, .avx512bf16]) {
            return amxPermitted && features.contains([.amxTile, .amxBF16]) ? .amxBF16 : .avx512BF16
        }
        if features.contains(.avx512f) { return .avx512 }
        if features.contains([.avx2, .fma]) { return .avx2 }
        return .portable
    }

    /// The environment variable `MOEKIT_ISA`, as set.
    static let forcedName: String? = ProcessInfo.processInfo.environment["MOEKIT_ISA"]

    /// The level `MOEKIT_ISA` names; `nil` when unset or not a name (which caps nothing, as before).
    public static let forced: ISALevel? = forcedName.flatMap { ISALevel(name: $0) }

    /// The best level this machine allows, AMX included (CPU, OS and permission), capped by `MOEKIT_ISA`:
    /// what would run if every level had its kernels.
    public static let machine: ISALevel = {
        let allowed = best(CPUFeatures.detected, amxPermitted: CPUFeatures.amxUnavailableReason == nil)
        return forced.map { min($0, allowed) } ?? allowed
    }()
}
