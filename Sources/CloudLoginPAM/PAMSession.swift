import CShim
import CloudLogin

/// What one call into the module has to work with: the PAM handle, its flags and arguments.
/// Owns every use of the handle, so the rest of the code never touches PAM.
struct PAMSession: EventLog, SignInHost {
    let handle: OpaquePointer
    let flags: Int32
    let arguments: ModuleArguments

    var isSilent: Bool { UInt32(bitPattern: flags) & PAM_SILENT != 0 }
    /// The first of pam_chauthtok's two calls.
    var isPreliminaryCheck: Bool { flags & PAM_PRELIM_CHECK != 0 }

    var log: EventLog { self }
    var configPath: String { arguments.configPath }

    func show(_ message: String, isError: Bool) { tell(message, isError: isError) }

    func rememberSignIn(_ accepted: Bool) { _ = CShim_set_authenticated(handle, accepted ? 1 : 0) }

    func signedInHere() -> Bool { CShim_was_authenticated(handle) != 0 }

    func record(_ level: LogLevel, _ message: String) {
        let priority: Int32
        switch level {
        case .debug:
            guard arguments.debug else { return }
            priority = LOG_DEBUG
        case .info: priority = LOG_INFO
        case .notice: priority = LOG_NOTICE
        case .warning: priority = LOG_WARNING
        case .error: priority = LOG_ERR
        }
        CShim_syslog(handle, priority, sanitized(message))
    }

    /// Tells the user `text` unless the application asked for silence.
    func tell(_ text: String, isError: Bool) {
        guard !isSilent else { return }
        _ = CShim_message(handle, isError ? PAM_ERROR_MSG : PAM_TEXT_INFO, text)
    }

    /// PAM_USER, asking for it through the conversation if the application has not set it.
    func user() -> String? {
        var pointer: UnsafePointer<CChar>?
        guard CShim_get_user(handle, &pointer) == PAM_SUCCESS, let pointer else { return nil }
        return String(validatingCString: pointer)
    }

    /// The password, through pam_get_authtok (which honours try_first_pass/use_first_pass
    /// and stores it as PAM_AUTHTOK for pam_unix after us).
    func password() -> PasswordAnswer {
        var pointer: UnsafePointer<CChar>?
        guard CShim_get_password(handle, &pointer) == PAM_SUCCESS, let pointer else { return .unavailable }
        return .password(SecretBytes(cString: pointer))
    }

    /// Sets PAM_USER (the local name for a UPN typed at login).
    func setUser(_ name: String) -> Bool {
        CShim_set_user(handle, name) == PAM_SUCCESS
    }


    /// Log text without control characters (a claim or IdP string could hold a newline).
    private func sanitized(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }.prefix(1000))
    }
}

/// The PAM conversation as the core's `Conversation`: MFA codes, factor menus, push notices.
/// Messages that are part of the dialogue are shown even under PAM_SILENT (which sudo sets on
/// every call): without them the user could not complete the sign-in.
extension PAMSession: Conversation {
    func ask(_ prompt: String, secret: Bool) -> SecretBytes? {
        var response: UnsafeMutablePointer<CChar>?
        let status = CShim_prompt(handle, secret ? PAM_PROMPT_ECHO_OFF : PAM_PROMPT_ECHO_ON, &response, prompt)
        defer { CShim_free_secret(response) }
        guard status == PAM_SUCCESS, let response else { return nil }
        return SecretBytes(cString: response)
    }

    func tell(_ text: String) -> Bool {
        CShim_message(handle, PAM_TEXT_INFO, text) == PAM_SUCCESS
    }

    /// sshd holds PAM messages until its next prompt (OpenSSH bug 2876; docs/facts.md): known
    /// by the service name, or by the PAM_TTY "ssh" sshd sets before authentication.
    var showsMessagesAtOnce: Bool {
        !(item(PAM_SERVICE) == "sshd" || item(PAM_TTY) == "ssh")
    }

    private func item(_ type: Int32) -> String? {
        var pointer: UnsafePointer<CChar>?
        guard CShim_get_string_item(handle, type, &pointer) == PAM_SUCCESS, let pointer else { return nil }
        return String(validatingCString: pointer)
    }
}
