import ArgumentParser
import MoEKit

/// How `moe run` and `moe forward` spread one block: worker threads, in-process devices or a 2-D mesh, or
/// the ranks of an Open MPI job. Both commands take these flags with the same meanings and ranges, so they
/// are declared once and used through `@OptionGroup`.
///
/// Each number's range is checked as it is read (``Flags``), so its refusal quotes the text as typed;
/// ``validate()`` holds the checks on the values together: the mesh's rank count and `--devices` against
/// `--mesh`. Whether D or EP splits the model's experts is checked once the model's config is read
/// (``MoEConfig/checkExpertParallel(devices:mesh:)``).
struct ParallelOptions: ParsableArguments {
    @OptionGroup var threading: ThreadOptions
    @Option(parsing: .unconditional, help: Flags.devices.help("Devices for expert parallelism, in process (D must divide the number of experts).", default: 1),
            transform: Flags.devices.parse) var devices = 1
    @Option(parsing: .unconditional,
            help: ArgumentHelp("A 2-D device mesh, e.g. 2x2: experts split over EP groups, each expert's columns over TP ranks (in process; EP·TP at most \(Flags.meshRanks)).",
                               valueName: "EPxTP"))
    var mesh: MeshShape?
    @Flag(help: "Run as one rank of an Open MPI job (mpirun -np D moe … --mpi): the ranks are the devices. Needs a build with --traits MPI.")
    var mpi = false
    @Option(parsing: .unconditional, help: Flags.timeout.help("With --mpi: seconds a rank waits for the others before every rank stops with an error.", default: 60),
            transform: Flags.timeout.parse) var timeout: Double = 60

    /// `--threads`, or every core the process may use.
    var threadCount: Int { threading.threadCount }

    /// Refuses a mesh of more than ``Flags/meshRanks`` ranks, worded as argument-parser words a value it cannot
    /// read (so every refused value reads alike), and `--devices` with `--mesh`.
    /// - Throws: ``CLIError/invalidOption(_:)`` naming the flags and values.
    func validate() throws {
        if let mesh, mesh.rankCount > Flags.meshRanks {
            throw CLIError.invalidOption("The value '\(mesh)' is invalid for '--mesh <EPxTP>': EP·TP is \(mesh.rankCount), at most \(Flags.meshRanks)")
        }
        if mesh != nil && devices != 1 { throw CLIError.invalidOption("give --devices or --mesh, not both") }
    }
}
