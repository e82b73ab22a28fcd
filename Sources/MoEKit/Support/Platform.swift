// One place for the platform imports the library needs: the C library (math, mmap, files)
// and Foundation's ICU-free core. Every other file imports what it uses from here implicitly
// through the module, so no file repeats these conditionals.
#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Musl)
@_exported import Musl
#elseif canImport(Darwin)
@_exported import Darwin
#endif

#if canImport(FoundationEssentials)
@_exported import FoundationEssentials
#else
@_exported import Foundation
#endif

/// POSIX `write`, reachable from types that have a `write` method of their own.
@inline(__always) func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
