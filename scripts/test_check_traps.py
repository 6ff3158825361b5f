"""Tests for scripts/check-traps.  Run: python3 -m pytest scripts/test_check_traps.py"""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-traps")
_loader = importlib.machinery.SourceFileLoader("check_traps", SCRIPT)
_spec = importlib.util.spec_from_loader("check_traps", _loader)
ct = importlib.util.module_from_spec(_spec)
_loader.exec_module(ct)


def kinds(src):
    return [what for _, what, _ in ct.scan_source(src)]


def lines(src):
    return [ln for ln, _, _ in ct.scan_source(src)]


# --------------------------------------------------------------- positives

POSITIVE = [
    # force unwrap
    ("let a = x!", "force unwrap"),
    ("let a = foo()!", "force unwrap"),
    ("let a = arr[0]!", "force unwrap"),
    ("let a = x!.y", "force unwrap"),
    ("let a = x?.y!.z", "force unwrap"),
    ("x! = 5", "force unwrap"),
    ("let a = `default`!", "force unwrap"),
    ("let a = dict[\"k\"]!", "force unwrap"),
    ("let s = \"value \\(opt!)\"", "force unwrap"),  # inside interpolation = code
    ("let s = #\"raw \\#(opt!) \"#", "force unwrap"),
    ("if a!=b, c! { }", "force unwrap"),
    # Swift lexes a `!` with no space before it as postfix, even before `=`: `a! = b`
    ("a!=b", "force unwrap"),
    ("a!==b", "force unwrap"),
    ("let v = opt.flatMap { $0 }!", "force unwrap"),
    ("let v = café!", "force unwrap"),
    ("let k = \\Foo.bar!", "force unwrap"),
    # implicitly unwrapped optionals
    ("var name: String!", "implicitly unwrapped optional"),
    ("func f(x: Int!) {}", "implicitly unwrapped optional"),
    ("func f() -> [UInt8]! { nil }", "implicitly unwrapped optional"),
    ("var p: UnsafeMutablePointer<CChar>! = nil", "implicitly unwrapped optional"),
    # try! / as!
    ("let d = try! decode()", "try!"),
    ("let d = try!decode()", "try!"),
    ("let v = obj as! String", "as!"),
    ("let v = (obj as!String)", "as!"),
    # trapping functions
    ("fatalError(\"boom\")", "fatalError()"),
    ("Swift.fatalError()", "fatalError()"),
    ("precondition(x > 0)", "precondition()"),
    ("precondition (x > 0, \"m\")", "precondition()"),
    ("preconditionFailure(\"no\")", "preconditionFailure()"),
    ("assertionFailure(\"no\")", "assertionFailure()"),
    ("assert(x > 0)", "assert()"),
    ("let v = opt.unsafelyUnwrapped", ".unsafelyUnwrapped"),
    ("unowned(unsafe) let owner: Owner", "unowned(unsafe)"),
    ("unowned( unsafe ) var o = p", "unowned(unsafe)"),
    # integer conversions
    ("let r = Int32(n)", "unchecked integer conversion Int32()"),
    ("let r = UInt32(n)", "unchecked integer conversion UInt32()"),
    ("let r = Int(d)", "unchecked integer conversion Int()"),
    ("let r = UInt(n)", "unchecked integer conversion UInt()"),
    ("let r = Int8(n)", "unchecked integer conversion Int8()"),
    ("let r = UInt64(n)", "unchecked integer conversion UInt64()"),
    ("let r = Int16(n)", "unchecked integer conversion Int16()"),
    ("let r = UInt16(n)", "unchecked integer conversion UInt16()"),
    ("let r = CInt(rc)", "unchecked integer conversion CInt()"),
    ("let r = CUnsignedInt(rc)", "unchecked integer conversion CUnsignedInt()"),
    ("let r = size_t(len)", "unchecked integer conversion size_t()"),
    ("let r = socklen_t(len)", "unchecked integer conversion socklen_t()"),
    ("let r = uid_t(n)", "unchecked integer conversion uid_t()"),
    ("let r = gid_t(n)", "unchecked integer conversion gid_t()"),
    ("let r = time_t(n)", "unchecked integer conversion time_t()"),
    ("let r = Swift.Int32(n)", "unchecked integer conversion Int32()"),
    ("let r = Int32.init(n)", "unchecked integer conversion Int32()"),
    ("let r = xs.map(Int32.init)", "unchecked integer conversion Int32.init reference"),
    ("let r = Int32(a + b)", "unchecked integer conversion Int32()"),
    ("let r = Int32(3.5)", "unchecked integer conversion Int32()"),
    ("let r = Int32(n, other: 1)", "unchecked integer conversion Int32()"),
    ("let r: Int32 = numericCast(n)", "unchecked integer conversion numericCast()"),
]


@pytest.mark.parametrize("src,what", POSITIVE, ids=[p[0] for p in POSITIVE])
def test_positive(src, what):
    assert what in kinds(src), ct.scan_source(src)


# --------------------------------------------------------------- negatives

NEGATIVE = [
    # ! that is not a force unwrap
    "if a != b {}",
    "if a !== b {}",
    "let v = { true }() != false",
    "if !flag {}",
    "let v = !x",
    "guard !list.isEmpty else { return }",
    "foo(!x, !(y))",
    "let v = a && !b",
    "#if !os(Linux)\n#endif",
    "return !done",
    # ! in comments and strings
    "// x! try! fatalError(\nlet a = 1",
    "/* x! as! Int32(n) */ let a = 1",
    "/* outer /* nested x! */ still comment y! */ let a = 1",
    "/// Doc: use `x!` never",
    "let s = \"don't x! try! fatalError( Int32(n)\"",
    "let s = \"escaped \\\" quote x! \"",
    "let s = \"backslash \\\\\" ; let t = 1",
    'let s = """\n  multi x! line\n  fatalError("no")\n  Int32(n) as! X\n  """',
    'let s = #"raw "quoted" x! \\(not interpolated!)"#',
    'let s = ##"raw "# still x! "##',
    'let s = #"""\n  raw multi " x! """ still\n  """#',
    "let r = #/a!b/#",
    # optionals handled safely
    "let v = x ?? 0",
    "let v = try? decode()",
    "let v = obj as? String",
    "if let v = x { use(v) }",
    "let v = opt.map { $0 + 1 }",
    # prefixes / lookalikes
    "let c = customFatalError(\"x\")",
    "let p = myprecondition(x)",
    "unowned let owner: Owner",
    "let v = opt.unsafelyUnwrappedThing",
    # integer conversions that cannot trap
    "let r = Int32(truncatingIfNeeded: n)",
    "let r = Int32(clamping: n)",
    "let r = Int32(exactly: n)",
    "let r = UInt32(bitPattern: n)",
    "let r = Int(bitPattern: ptr)",
    "let r = Int32(\n    truncatingIfNeeded: n)",
    "let r = UInt32(littleEndian: n)",
    "let r = Int(s, radix: 10)",
    "let r = UInt8(hex, radix: 16)",
    "let r = Int(s.prefix(2), radix: 16)",
    "let r = Int(\"42\")",
    "let r = UInt8(ascii: \"a\")",
    "let r = Int32()",
    "let r = Int32(0)",
    "let r = UInt8(0xff)",
    "let r = Int(-1)",
    "let r = xs.map(Int32.init(truncatingIfNeeded:))",
    "let t: Int32 = 5",
    "let v = Int32.max",
    "let s = MemoryLayout<Int32>.size",
    "let a = [Int](repeating: 0, count: 3)",
    "extension UInt32 { }",
    "func f(_ x: Int) -> Int { x }",
    "let p = Point(x: 1)",
    "let p = BigInt(n)",
    "let p = MyInt32(n)",
    "let p = foo.Int32(n)",
]


@pytest.mark.parametrize("src", NEGATIVE, ids=NEGATIVE)
def test_negative(src):
    assert ct.scan_source(src) == []


# --------------------------------------------------------------- exemptions

def test_exemption_with_reason():
    assert ct.scan_source("let r = Int32(n) // trap-check: n < 1000 checked above") == []
    assert ct.scan_source("let r = x!   //trap-check: set in init") == []


def test_exemption_only_that_line():
    src = "let a = x! // trap-check: ok\nlet b = y!"
    assert ct.scan_source(src) == [(2, "force unwrap", "let b = y!")]


def test_exemption_needs_reason():
    # not exempt, and the empty exemption is reported too
    assert sorted(kinds("let a = x! // trap-check:")) == ["force unwrap", "trap-check exemption without a reason"]
    assert "trap-check exemption without a reason" in kinds("let a = 1 // trap-check:   ")


def test_exemption_must_be_trap_check_comment():
    assert kinds("let a = x! // checked above") == ["force unwrap"]
    assert kinds("let a = x! /* trap-check: reason */") == ["force unwrap"]


def test_multiline_construct_reported_and_exempted_on_first_line():
    src = "let r = Int32(\n    n + 1)"
    assert lines(src) == [1]
    assert ct.scan_source("let r = Int32( // trap-check: bounded\n    n + 1)") == []


# --------------------------------------------------------------- line numbers

def test_line_numbers_after_multiline_string_and_comment():
    src = ('let a = """\nx!\n"""\n'  # lines 1-3
           "/* comment\n y!\n*/\n"  # lines 4-6
           "let b = z!\n")  # line 7
    assert ct.scan_source(src) == [(7, "force unwrap", "let b = z!")]


def test_interpolation_with_nested_string_and_parens():
    src = 'let s = "a \\(f("x!", (1)) ) b x!" + y!'
    assert ct.scan_source(src) == [(1, "force unwrap", src)]
    assert lines('let s = "\\(dict["k"]!)"') == [1]


# --------------------------------------------------------------- CLI

def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def test_cli_clean(tmp_path):
    d = tmp_path / "Sources" / "A"
    d.mkdir(parents=True)
    (d / "a.swift").write_text("let x = y ?? 0\n")
    (d / "b.swift").write_text("if a != b {}\n")
    (d / "notes.txt").write_text("x!\n")
    r = run(str(d))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "check-traps: 2 files, no trap-prone constructs"


def test_cli_findings(tmp_path):
    d1 = tmp_path / "A"
    d2 = tmp_path / "B"
    d1.mkdir()
    d2.mkdir()
    (d1 / "a.swift").write_text("let ok = 1\nlet v = try! f()\n")
    (d2 / "b.swift").write_text("let r = Int32(n)\n")
    build = d2 / ".build" / "x"
    build.mkdir(parents=True)
    (build / "gen.swift").write_text("let v = x!\n")
    r = run(str(d1), str(d2))
    assert r.returncode == 1
    out = r.stdout.strip().splitlines()
    assert out == [
        f"{d1 / 'a.swift'}:2: try!: let v = try! f()",
        f"{d2 / 'b.swift'}:1: unchecked integer conversion Int32(): let r = Int32(n)",
    ]


def test_cli_usage():
    assert run().returncode == 2
    assert run("/nonexistent/dir").returncode == 2
