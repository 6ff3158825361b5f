import CQRencode

/// A QR code drawn as text, for the device authorization step (RFC 8628): the sign-in shows
/// `verification_uri_complete` this way through the PAM conversation, beside the URL itself.
/// The symbol comes from libqrencode; this file only draws it (docs/facts.md, "The QR code of the
/// device authorization step").
public enum QRCode {
    /// Light modules around the symbol on each side: ISO/IEC 18004 asks for 4.
    public static let quietZone = 4

    /// The most bytes a QR code holds in byte mode at level L (version 40, ISO/IEC 18004
    /// table 7). Longer text is refused before libqrencode copies it (a test pins this to what
    /// libqrencode encodes).
    public static let maximumBytes = 2953

    /// The QR code of `text` (its UTF-8 bytes in byte mode, error correction level L, the
    /// smallest version that holds them), as lines of text: `4 × version + 25` characters wide
    /// (41 for version 4, which holds 78 bytes) and `2 × version + 13` lines high (21 for
    /// version 4), two modules per character cell vertically.
    ///
    /// Drawn with the four characters the Linux console's default fonts have — U+2588 █, U+2580 ▀,
    /// U+2584 ▄ and space — for a terminal with light text on a dark background (the Linux
    /// console, and most terminals' default): the **light** modules and the 4-module quiet zone
    /// are the foreground (█), the dark modules are the background (space). On such a terminal
    /// this is an ordinary dark-on-light code with its light margin, which every phone scanner
    /// reads. On a terminal with dark text on a light background the code appears inverted
    /// (light on dark, inside a dark frame); many scanners read that too, not all. Every line
    /// starts and ends with a block, so nothing trims it; the bottom half of the last line lies
    /// below the quiet zone and is left as background (▀).
    ///
    /// nil when there is nothing to draw: empty text, text with a NUL byte (the URL shown beside
    /// the code travels as a C string and would stop at the NUL, so the code could lead somewhere
    /// the text does not say), more than `maximumBytes` bytes, or libqrencode failing (out of
    /// memory). The caller then shows the URL only.
    public static func lines(for text: String) -> [String]? {
        guard let symbol = Symbol(encoding: text) else { return nil }
        return draw(symbol)
    }

    /// The cell for a pair of modules, top over bottom; `true` = drawn in the foreground (light).
    static func cell(top: Bool, bottom: Bool) -> Character {
        switch (top, bottom) {
        case (true, true): return "\u{2588}"
        case (true, false): return "\u{2580}"
        case (false, true): return "\u{2584}"
        case (false, false): return " "
        }
    }

    static func draw(_ symbol: Symbol) -> [String] {
        // The symbol is at most 177 modules wide (checked in Symbol.init), so these bounds and
        // the arithmetic on them are small.
        let side = symbol.width + 2 * quietZone
        var lines: [String] = []
        lines.reserveCapacity(side / 2 + 1)
        var top = -quietZone
        while top < symbol.width + quietZone {
            var line = ""
            line.reserveCapacity(side * 3)
            for column in -quietZone..<(symbol.width + quietZone) {
                line.append(cell(top: symbol.isForeground(row: top, column: column),
                                 bottom: symbol.isForeground(row: top + 1, column: column)))
            }
            lines.append(line)
            top += 2
        }
        return lines
    }

    /// libqrencode's symbol, copied out of its buffer (which is freed at once).
    struct Symbol {
        let version: Int
        /// Modules per side: 17 + 4 × version.
        let width: Int
        /// Row by row, `true` = dark.
        let dark: [Bool]

        init?(encoding text: String) {
            let bytes = Array(text.utf8)
            guard !bytes.isEmpty, bytes.count <= QRCode.maximumBytes, !bytes.contains(0),
                  let size = Int32(exactly: bytes.count) else { return nil }
            let encoded = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<QRcode>? in
                guard let base = buffer.baseAddress else { return nil }
                return CQRencode_encode_bytes(base, size)
            }
            guard let code = encoded else { return nil }
            defer { CQRencode_free(code) }
            guard let version = Int(exactly: code.pointee.version), (1...40).contains(version),
                  let width = Int(exactly: code.pointee.width), width == 17 + 4 * version,
                  let data = code.pointee.data else { return nil }
            // Each byte is one module; bit 0 set = dark (qrencode.h, "QRcode class").
            let modules = UnsafeBufferPointer(start: data, count: width * width)
            self.version = version
            self.width = width
            self.dark = modules.map { $0 & 1 == 1 }
        }

        /// Whether the module at (row, column) is drawn in the foreground: a light module of the
        /// symbol or of the quiet zone. Outside the quiet zone (the half cell below the last
        /// row) nothing is drawn.
        func isForeground(row: Int, column: Int) -> Bool {
            let zone = -QRCode.quietZone..<(width + QRCode.quietZone)
            guard zone.contains(row), zone.contains(column) else { return false }
            guard (0..<width).contains(row), (0..<width).contains(column) else { return true }
            let index = row * width + column
            guard dark.indices.contains(index) else { return false }
            return !dark[index]
        }
    }
}
