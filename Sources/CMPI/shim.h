// Open MPI's handles (MPI_COMM_WORLD, MPI_BYTE, MPI_INT, MPI_REQUEST_NULL, MPI_STATUS_IGNORE) are
// macros over incomplete structs that Swift cannot import; these inline functions hand them over.
#ifndef MOEKIT_CMPI_SHIM_H
#define MOEKIT_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cmpi_int(void) { return MPI_INT; }
static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request cmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline int cmpi_success(void) { return MPI_SUCCESS; }
#endif
