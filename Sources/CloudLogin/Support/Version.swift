/// The version in the User-Agent, `cloudlogin --version` and the Debian package
/// (scripts/build-deb reads it from this file).
public enum CloudLoginVersion {
    public static let string = "0.2.0"
}
