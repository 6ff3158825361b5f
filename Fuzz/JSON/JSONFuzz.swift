// libFuzzer target: JSONValue.parse, which reads every IdP answer (token, discovery, JWKS,
// userinfo) and ID-token parts.
import CloudLogin
import FuzzDriver
import FuzzSupport

@_cdecl("fuzz_json_main")
public func fuzzJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    FuzzDriver_run(argc, argv, { data, size in fuzzJSON(data, size) })
}

public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let value = JSONValue.parse(UnsafeRawBufferPointer(start: data, count: size))
    touch(value)
    if let value {
        _ = ProviderMetadataProbe.read(value)
    }
    return 0
}

/// Discovery documents go through the same parser; read one as the directory does.
enum ProviderMetadataProbe {
    static func read(_ value: JSONValue) -> Bool {
        (try? ProviderMetadata(discovery: value, expectedIssuer: fixtureIssuer)) != nil
    }
}
