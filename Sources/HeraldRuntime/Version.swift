// Herald's version: `herald --version`, the `version` of /healthz and `herald status`, and the
// `herald_build_info{version}` metric. Raised with every release; CHANGELOG.md says what changed.

/// The version of this build.
public enum HeraldVersion {
    public static let string = "0.8.0"
}
