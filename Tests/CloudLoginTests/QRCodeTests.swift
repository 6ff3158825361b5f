@testable import CloudLogin
import CQRencode
import Foundation
import Glibc
import Testing

/// QRCode.lines(for:) (docs/facts.md, "The QR code of the device authorization step"): the
/// drawing is read back module by module and compared with the symbol libqrencode makes for the
/// same bytes, called here directly; and when zbar-tools is installed, zbarimg decodes a picture
/// of the lines back to the text.
@Suite struct QRCodeTests {
    static let typicalURL = "https://login.example.com/device?user_code=ABCD-EFGH"

    /// libqrencode's own matrix for `bytes` (byte mode, level L, smallest version):
    /// rows of modules, `true` = dark. nil when it refuses.
    static func libqrencodeMatrix(_ bytes: [UInt8]) -> [[Bool]]? {
        guard let code = QRcode_encodeData(Int32(bytes.count), bytes, 0, QR_ECLEVEL_L) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let cells = UnsafeBufferPointer(start: code.pointee.data, count: width * width)
        return (0..<width).map { row in (0..<width).map { column in cells[row * width + column] & 1 == 1 } }
    }

    /// The drawing read back: one row of modules per half line, `true` = foreground (█ half).
    static func readBack(_ lines: [String]) -> [[Bool]] {
        var rows: [[Bool]] = []
        for line in lines {
            var top: [Bool] = [], bottom: [Bool] = []
            for scalar in line.unicodeScalars {
                switch scalar {
                case "\u{2588}": top.append(true); bottom.append(true)
                case "\u{2580}": top.append(true); bottom.append(false)
                case "\u{2584}": top.append(false); bottom.append(true)
                case " ": top.append(false); bottom.append(false)
                default: Issue.record("unexpected character U+\(String(scalar.value, radix: 16)) in \(line)")
                }
            }
            rows.append(top)
            rows.append(bottom)
        }
        return rows
    }

    /// Checks `lines` against libqrencode's matrix for `text`: the symbol with dark modules as
    /// background, a light quiet zone of exactly 4 modules, and the half row below it empty.
    static func expectDrawing(of text: String, _ lines: [String]) {
        guard let matrix = libqrencodeMatrix(Array(text.utf8)) else {
            Issue.record("libqrencode refused \(text)")
            return
        }
        let width = matrix.count, zone = QRCode.quietZone, side = width + 2 * zone
        #expect(zone == 4)
        #expect(lines.count == (side + 1) / 2)
        let rows = readBack(lines)
        #expect(rows.count == side + 1)
        #expect(rows.allSatisfy { $0.count == side })
        guard rows.count == side + 1, rows.allSatisfy({ $0.count == side }) else { return }
        let expected = (0..<side).map { row in
            (0..<side).map { column in
                let inSymbol = (zone..<(zone + width)).contains(row) && (zone..<(zone + width)).contains(column)
                return inSymbol ? !matrix[row - zone][column - zone] : true
            }
        }
        let firstDifference = zip(rows, expected).enumerated().first { $0.element.0 != $0.element.1 }.map { $0.offset }
        #expect(firstDifference == nil, "module row \(firstDifference ?? -1) of \(text) differs")
        #expect(rows[side].allSatisfy { !$0 }, "below the quiet zone nothing is drawn")
    }

    @Test(arguments: [
        typicalURL,
        "https://auth.example.org/realms/corp/device?user_code=WDJB-MJHT",
        "https://example.okta.com/activate?user_code=BCDFGHJK",
        "a",
        "https://idp.example/device?user_code=ÄÖÜ-ß€", // UTF-8 bytes, in byte mode
    ])
    func drawsLibqrencodesSymbol(_ text: String) throws {
        let lines = try #require(QRCode.lines(for: text))
        Self.expectDrawing(of: text, lines)
    }

    /// Versions 1 to 40, through every size class of the symbol (alignment patterns, version
    /// information from version 7 on).
    @Test(arguments: [1, 17, 18, 78, 79, 154, 155, 500, 1000, 2953])
    func drawsLibqrencodesSymbolOfLength(_ count: Int) throws {
        let text = String(repeating: "x", count: count)
        let lines = try #require(QRCode.lines(for: text))
        Self.expectDrawing(of: text, lines)
    }

    /// 80 × 25 is the Linux console's smallest screen. The typical URL (52 bytes) needs
    /// version 3: 37 columns, 19 lines.
    @Test func typicalURLFitsAConsole() throws {
        let lines = try #require(QRCode.lines(for: Self.typicalURL))
        #expect(lines.count == 19)
        #expect(lines.allSatisfy { $0.unicodeScalars.count == 37 })
    }

    /// 4 × version + 25 columns, 2 × version + 13 lines: 78 bytes is the most version 4 holds
    /// at level L, 106 version 5 (the largest that leaves two lines of an 80 × 25 console free).
    @Test(arguments: [(78, 41, 21), (79, 45, 23), (106, 45, 23), (107, 49, 25)])
    func sizeFollowsTheVersion(_ count: Int, _ columns: Int, _ height: Int) throws {
        let lines = try #require(QRCode.lines(for: String(repeating: "u", count: count)))
        #expect(lines.count == height)
        #expect(lines.allSatisfy { $0.unicodeScalars.count == columns })
    }

    @Test func linesStartAndEndWithABlock() throws {
        let lines = try #require(QRCode.lines(for: Self.typicalURL))
        for line in lines {
            #expect(line.unicodeScalars.first != " " && line.unicodeScalars.last != " ")
        }
        #expect(lines.first.map { Set($0.unicodeScalars) } == ["\u{2588}"])
        #expect(lines.last.map { Set($0.unicodeScalars) } == ["\u{2580}"])
    }

    @Test(arguments: ["", "https://login.example.com/device\u{0}?user_code=ABCD-EFGH", "\u{0}"])
    func refused(_ text: String) {
        #expect(QRCode.lines(for: text) == nil)
    }

    @Test func refusedWhenTooLong() {
        #expect(QRCode.lines(for: String(repeating: "a", count: 5000)) == nil)
        #expect(QRCode.lines(for: String(repeating: "a", count: QRCode.maximumBytes + 1)) == nil)
        #expect(QRCode.lines(for: String(repeating: "é", count: 1477)) == nil) // 2954 bytes
        #expect(QRCode.lines(for: String(repeating: "é", count: 1476) + "a") != nil) // 2953 bytes
        #expect(QRCode.lines(for: String(repeating: "a", count: 1_000_000)) == nil)
    }

    /// maximumBytes is what libqrencode itself can encode: version 40 at most, one byte more
    /// is refused (ERANGE).
    @Test func maximumIsLibqrencodesLimit() throws {
        let largest = [UInt8](repeating: 0x61, count: QRCode.maximumBytes)
        #expect(Self.libqrencodeMatrix(largest)?.count == 177)
        #expect(Self.libqrencodeMatrix(largest + [0x61]) == nil)
        let lines = try #require(QRCode.lines(for: String(repeating: "a", count: QRCode.maximumBytes)))
        #expect(lines.count == 93)
        #expect(lines.allSatisfy { $0.unicodeScalars.count == 185 })
    }

    @Test func sameTextSameDrawing() {
        #expect(QRCode.lines(for: Self.typicalURL) == QRCode.lines(for: Self.typicalURL))
        #expect(QRCode.lines(for: Self.typicalURL) != QRCode.lines(for: Self.typicalURL + "X"))
    }

    // MARK: End to end: a picture of the lines, decoded by zbar

    static let zbarimg = "/usr/bin/zbarimg"

    /// The lines as a terminal shows them, in a binary PGM: each character cell `scale` pixels
    /// wide and `2 × scale` high (a module is square, as on the console's 8 × 16 font), with
    /// `margin` cells of terminal background around.
    static func picture(_ lines: [String], foreground: UInt8, background: UInt8, scale: Int = 4, margin: Int = 3) -> Data {
        let rows = readBack(lines)
        let columns = rows.first?.count ?? 0
        let width = (columns + 2 * margin) * scale, height = (rows.count + 4 * margin) * scale
        var pixels = [UInt8](repeating: background, count: width * height)
        for (row, modules) in rows.enumerated() {
            for (column, lit) in modules.enumerated() where lit {
                for y in 0..<scale {
                    for x in 0..<scale {
                        pixels[((row + 2 * margin) * scale + y) * width + (column + margin) * scale + x] = foreground
                    }
                }
            }
        }
        return Data("P5\n\(width) \(height)\n255\n".utf8) + Data(pixels)
    }

    /// What zbarimg reads in `picture` (only QR codes), nil when it finds none.
    static func zbarDecode(_ picture: Data, extraOptions: [String] = []) throws -> String? {
        let directory = TemporaryDirectory()
        let file = "\(directory.path)/code.pgm"
        try picture.write(to: URL(fileURLWithPath: file))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: zbarimg)
        process.arguments = ["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"] + extraOptions + [file]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Light text on a dark background (the Linux console): an ordinary code, which zbar reads.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: zbarimg), "zbarimg (zbar-tools) is not installed"),
          arguments: [typicalURL, "https://idp.example/device?user_code=ÄÖÜ-ß€", "https://idp.example/device?code=" + String(repeating: "x", count: 300)])
    func zbarReadsItOnADarkTerminal(_ text: String) throws {
        let lines = try #require(QRCode.lines(for: text))
        #expect(try Self.zbarDecode(Self.picture(lines, foreground: 0xC0, background: 0x00)) == text)
    }

    /// Dark text on a light background shows the code inverted; it is still a valid symbol,
    /// which zbar reads once told to try inverted images (it does not by default: docs/facts.md).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: zbarimg), "zbarimg (zbar-tools) is not installed"))
    func zbarReadsTheInvertedCodeOfALightTerminal() throws {
        let lines = try #require(QRCode.lines(for: Self.typicalURL))
        let picture = Self.picture(lines, foreground: 0x00, background: 0xFF)
        #expect(try Self.zbarDecode(picture, extraOptions: ["-Stest-inverted"]) == Self.typicalURL)
    }

    /// The harness finds nothing where there is nothing: a picture with the drawing in the
    /// background's colour.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: zbarimg), "zbarimg (zbar-tools) is not installed"))
    func zbarFindsNothingInABlankPicture() throws {
        let lines = try #require(QRCode.lines(for: Self.typicalURL))
        #expect(try Self.zbarDecode(Self.picture(lines, foreground: 0x00, background: 0x00)) == nil)
    }
}

