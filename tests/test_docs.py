"""The guides and docs cannot drift from the tests: every test a claims table (or any text)
names must exist, so a renamed or deleted test breaks this check, not a reader's trust."""
import glob
import os
import re
import unittest

import run
from labtest import TESTS_DIR

LABEL = "docs"
LAB_DIR = os.path.dirname(TESTS_DIR)
TEST_ID = re.compile(r"\b(test_(?:lesson\d\d|peers|harness|docs)\.[A-Z]\w*(?:\.test_\w+)?)\b")


def documents():
    """The guides, the docs and the READMEs a reader follows."""
    patterns = ("lessons/*/README.md", "docs/*.md", "README.md", "tests/README.md")
    for pattern in patterns:
        yield from sorted(glob.glob(os.path.join(LAB_DIR, pattern)))


class ClaimsTableTests(unittest.TestCase):

    def test_every_test_the_documents_name_exists(self):
        known = {test_id for test_id, _ in run.all_tests()}
        known |= {test_id.rsplit(".", 1)[0] for test_id in known}  # classes too
        missing = []
        for path in documents():
            with open(path, encoding="utf-8") as text:
                for number, line in enumerate(text, 1):
                    for test_id in TEST_ID.findall(line):
                        if test_id not in known and not any(  # a `ctest -R` prefix is fine
                                other.startswith(test_id) for other in known):
                            missing.append("%s:%d: %s" % (os.path.relpath(path, LAB_DIR),
                                                          number, test_id))
        self.assertEqual(missing, [], "documents name tests that do not exist:\n"
                         + "\n".join(missing))

    def test_every_lesson_guide_has_a_claims_table_naming_its_own_tests(self):
        for guide in sorted(glob.glob(os.path.join(LAB_DIR, "lessons", "*", "README.md"))):
            number = os.path.basename(os.path.dirname(guide))[:2]
            with open(guide, encoding="utf-8") as text:
                named = TEST_ID.findall(text.read())
            self.assertTrue(any(test_id.startswith("test_lesson%s." % number)
                                for test_id in named),
                            "%s names none of lesson %s's tests" % (guide, number))
