"""Adds up the JUnit reports of every test binary and pytest file of the
given build directories and prints one closing line: 'N passed, N failed'."""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def count(dirs):
    passed = failed = skipped = 0
    failures = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.xml"))):
            try:
                root = ET.parse(path).getroot()
            except ET.ParseError as e:
                failed += 1
                failures.append("%s: unreadable report (%s)" % (path, e))
                continue
            for case in root.iter("testcase"):
                name = "%s::%s" % (case.get("classname", "?"), case.get("name", "?"))
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                    failures.append("%s (%s)" % (name, os.path.basename(d.rstrip("/"))))
                elif case.find("skipped") is not None:
                    skipped += 1
                else:
                    passed += 1
    return passed, failed, skipped, failures


def main():
    dirs = sys.argv[1:]
    passed, failed, skipped, failures = count(dirs)
    for f in failures:
        print("FAILED " + f)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print("tests: " + line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
