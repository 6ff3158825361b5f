import Glibc

/// Bytes that must not outlive their use: a password, a client secret, a token response.
///
/// The storage is allocated by hand (never copied by Swift's copy-on-write) and overwritten
/// with `explicit_bzero` when it grows and when the value goes away. A password never becomes
/// a `String`.
public final class SecretBytes: @unchecked Sendable {
    private var storage: UnsafeMutableRawBufferPointer
    /// Number of bytes in use.
    public private(set) var count: Int

    /// An empty buffer with room for `capacity` bytes.
    public init(capacity: Int = 64) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 16), alignment: 1)
        count = 0
    }

    /// A copy of a NUL-terminated C string (for example the token PAM hands over).
    public convenience init(cString: UnsafePointer<CChar>) {
        let length = strlen(cString)
        self.init(capacity: length + 1)
        append(UnsafeRawBufferPointer(start: cString, count: length))
    }

    /// A copy of `bytes`. Use for test data and for non-secret parts of a request.
    public convenience init<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        self.init(capacity: 64)
        for byte in bytes { append(byte) }
    }

    deinit {
        wipe()
        storage.deallocate()
    }

    public var isEmpty: Bool { count == 0 }

    /// Overwrites every byte of the storage and empties the buffer.
    public func wipe() {
        if let base = storage.baseAddress { explicit_bzero(base, storage.count) }
        count = 0
    }

    public func append(_ byte: UInt8) {
        reserve(count + 1)
        storage[count] = byte
        count += 1
    }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let source = bytes.baseAddress else { return }
        reserve(count + bytes.count)
        guard let target = storage.baseAddress else { return }
        memcpy(target + count, source, bytes.count)
        count += bytes.count
    }

    public func append(_ other: SecretBytes) {
        other.withBytes { append($0) }
    }

    public func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Calls `body` with the bytes in use.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Calls `body` with a NUL-terminated copy of the bytes in the same storage (for C APIs).
    public func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        reserve(count + 1)
        storage[count] = 0
        let base = storage.baseAddress ?? UnsafeMutableRawPointer(emptyCString)
        return try body(base.assumingMemoryBound(to: CChar.self))
    }

    /// True if the bytes equal `other`, in time that depends only on the lengths.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return withBytes { mine in
            other.withBytes { theirs in
                var difference: UInt8 = 0
                for index in 0..<mine.count { difference |= mine[index] ^ theirs[index] }
                return difference == 0
            }
        }
    }

    /// Whether the bytes contain `byte`.
    public func contains(_ byte: UInt8) -> Bool {
        withBytes { $0.contains(byte) }
    }

    /// Whether an ASCII control character (below 0x20, or DEL) is among the bytes.
    public var containsControlCharacter: Bool {
        withBytes { $0.contains { $0 < 0x20 || $0 == 0x7F } }
    }

    private func reserve(_ needed: Int) {
        guard needed > storage.count else { return }
        var newCapacity = storage.count
        while newCapacity < needed { newCapacity = newCapacity.multipliedReportingOverflow(by: 2).partialValue }
        let newStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: newCapacity, alignment: 1)
        if let target = newStorage.baseAddress, let source = storage.baseAddress {
            memcpy(target, source, count)
        }
        wipe(keepingCount: true)
        storage.deallocate()
        storage = newStorage
    }

    private func wipe(keepingCount: Bool) {
        let saved = count
        wipe()
        if keepingCount { count = saved }
    }
}

/// "" for the (unreachable: capacity is never 0) case of storage without an address; allocated
/// once, never freed, so the pointer stays valid.
private let emptyCString: UnsafeMutablePointer<CChar> = {
    let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    pointer.initialize(to: 0)
    return pointer
}()
