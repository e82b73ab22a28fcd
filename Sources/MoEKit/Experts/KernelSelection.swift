/// The kernel families a work item can run on, best first (issue 11: AMX › AVX-512 BF16 › AVX-512 › AVX2 ›
/// portable Swift), under the names `moe bench` uses.
enum KernelFamily: String, Sendable, CaseIterable {
    /// AMX tiles (`tdpbf16ps`): BF16 compute only. No such kernel is built yet.
    case amxBF16 = "amx-bf16"
    /// `vdpbf16ps` on bf16 k-pairs (`moe_panel_bf16dot_avx512`): BF16 compute.
    case avx512BF16 = "avx512-bf16"
    /// The AVX-512 FMA micro-tiles (`moe_panel_*_avx512`): F32 compute, every stored format.
    case avx512 = "avx512"
    /// `vpdpbusd` on zmm over ggml blocks and 8-bit activations (``Int8Dot``): int8 compute.
    case avx512VNNI = "avx512-vnni"
    /// The AVX2 + FMA micro-tiles (`moe_panel_*_avx2`): F32 compute; `vpmaddubsw` for int8 compute.
    case avx2 = "avx2"
    /// ``TileKernel/portable(rows:depth:a:c:accumulate:weight:)`` or the portable pair loop of
    /// ``TileKernel/multiplyPairs(rows:pairs:a:b:c:accumulate:)``.
    case portable = "swift"
}

/// Which kernel family computes a work item, per compute mode and per shape: a pure function of the
/// instruction-set level, so the choice is tested on feature sets this machine does not have.
///
/// The rule. F32 compute: AVX-512 › AVX2 › portable, by level alone (AMX never: its BF16 products would
/// round the F32 activations; the exact-F32 split-BF16 mode of `SplitBF16` is not a compute mode yet).
/// BF16 compute: AMX-BF16 when the level has it and the item is large enough to pay for the tile setup —
/// at least ``amxMinimumRows`` rows and ``amxMinimumDepth`` k —, else `vdpbf16ps` at AVX-512 BF16, else
/// the portable pair loop (today's choice: the pair layout has no AVX-512/AVX2 FMA kernel). Without AMX
/// this is exactly what `TileKernel` runs at that level.
enum KernelSelection {
    /// Rows of a work item from which AMX is chosen over `vdpbf16ps`. A PLACEHOLDER, not a measurement:
    /// two 16-row A tiles, guessed so one `ldtilecfg` and the tile loads/stores are spread over enough
    /// `tdpbf16ps`. To be measured on an AMX host: `moe bench` at T = 1, 16, 128, 512 with
    /// `MOEKIT_ISA=avx512-bf16` against `amx-bf16`, per preset, and set to the crossover.
    static let amxMinimumRows = 32
    /// Depth (k, in bf16 values) from which AMX is chosen: one tile row of 32 bf16 (64 bytes). Also a
    /// placeholder: below it every `tdpbf16ps` works on a zero-padded tile.
    static let amxMinimumDepth = 32
    /// Output columns from which AMX is chosen: one 16-column F32 C tile (a panel is 32 wide, so always).
    static let amxMinimumColumns = 16
    /// Whether this build has AMX kernels. False: none has been written, because no machine that ran
    /// the tests had AMX (issue 11: no AMX code that no test has run).
    static let amxKernelsBuilt = false

    /// The family for a work item of `rows` rows (of the item, ≤ ``GroupedPanelGEMM/rowBlock``; the
    /// tokens routed to one expert), `depth` k and `columns` output columns, at instruction-set `level`.
    static func family(level: ISALevel, compute: ComputeMode, rows: Int, depth: Int, columns: Int) -> KernelFamily {
        switch compute {
        case .f32:
            return level >= .avx512 ? .avx512 : level >= .avx2 ? .avx2 : .portable
        case .bf16:
            if level >= .amxBF16 && rows >= amxMinimumRows && depth >= amxMinimumDepth && columns >= amxMinimumColumns {
                return .amxBF16
            }
            return level >= .avx512BF16 ? .avx512BF16 : .portable
        case .int8:
            // ``Int8Dot/ISA/detected`` adds the VNNI and BW bits the level does not carry (an AVX-512 CPU without
            // VNNI runs the AVX2 int8 kernels).
            return level >= .avx512 ? .avx512VNNI : level >= .avx2 ? .avx2 : .portable
        }
    }

    /// The level the kernels of this build run at: ``TileKernel/ISA/level`` (CPU and `MOEKIT_ISA`), which
    /// stops at AVX-512 BF16 while ``amxKernelsBuilt`` is false.
    static var runningLevel: ISALevel { ISALevel(rawValue: TileKernel.ISA.level) ?? .portable }

    /// Why AMX did not run (`moe bench`'s `machine.amx`), `nil` when it did: the CPU, OS, permission or
    /// `MOEKIT_ISA` reason, else that this build has no AMX kernels.
    static var amxFallbackReason: String? {
        if let reason = CPUFeatures.amxUnavailableReason { return reason }
        return amxKernelsBuilt ? nil : "AMX is available but this build has no AMX kernels yet"
    }
}
