import ArgumentParser
#if MPI
import MoEMPI
#endif

/// The life of one MPI rank of a `moe … --mpi` command: start MPI, run the rank's work, and turn any error
/// on any rank into one line and `MPI_Abort` (exit code 1 everywhere), so no rank is left waiting.
enum MPIJob {
    #if MPI
    static func run(timeoutSeconds: Double, _ body: (MPICommunicator) throws -> Void) throws {
        let communicator: MPICommunicator
        do {
            communicator = try MPICommunicator(timeoutSeconds: timeoutSeconds)
        } catch {
            printError("moe: error: \(error)")
            throw ExitCode(1)
        }
        do {
            try body(communicator)
        } catch {
            communicator.abort("\(error)")
        }
        MPICommunicator.finalize()
    }
    #endif

    /// What `--mpi` says in a build without the MPI trait.
    static func unavailable() throws -> Never {
        printError("moe: error: --mpi needs a moe built with the MPI trait: swift build -c release --traits MPI")
        throw ExitCode(1)
    }
}
