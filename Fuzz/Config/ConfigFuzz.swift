// libFuzzer target: the config parser (cloudlogin.conf as root wrote it, or as anyone did).
import CloudLogin
import FuzzDriver
import FuzzSupport

@_cdecl("fuzz_config_main")
public func fuzzConfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzConfig(data, size) })
}

public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    let context = ConfigParser.Context(fileIsPrivate: size % 2 == 0,
                                       readSecretFile: { _ in .success(SecretBytes("fuzz-secret".utf8)) },
                                       checkTrustedFile: { _ in nil })
    switch ConfigParser.parse(text, path: "/fuzz/cloudlogin.conf", context: context) {
    case .success(let config):
        _ = config.warnings.map(\.description)
    case .failure(let problem):
        _ = problem.description
    }
    return 0
}
