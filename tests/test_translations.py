"""The Simplified Chinese pages cannot drift from the English: a page changed without its
translation, or a code block, transcript, command or test id that differs by one character
in either edition, fails here, naming both files (tests/translations.py says how to fix it)."""
import os
import unittest

import translations

LABEL = "docs"


class TranslationTests(unittest.TestCase):

    def test_every_guide_and_required_page_has_a_translation(self):
        missing = ["%s (expected %s)" % (english, translation)
                   for english, translation in sorted(translations.required_pairs().items())
                   if not os.path.isfile(os.path.join(translations.LAB_DIR, translation))]
        self.assertEqual(missing, [], "pages without a zh-CN translation:\n" + "\n".join(missing))

    def test_every_translation_is_in_step_with_its_english_page(self):
        for translation in translations.translations():
            with self.subTest(translation=translation):
                problems = translations.differences(translation)
                self.assertEqual(problems, [], "\n".join(problems))

    def test_a_one_character_edit_in_either_edition_is_caught(self):
        # The checker itself, on a real pair: a changed code block in the translation, and
        # a changed English page (its hash), must each be reported.
        pair = "lessons/02-byte-streams/README.zh-CN.md"
        if not os.path.isfile(os.path.join(translations.LAB_DIR, pair)):
            self.skipTest("no translation of lesson 02 yet")
        english, _ = translations.source_of(pair)
        text = translations.read(pair)
        block = translations.blocks(text)[0]
        edited = text.replace(block, block.replace("\n", "\nx", 1), 1)  # one character more
        original_read = translations.read
        try:
            translations.read = lambda path: edited if path == pair else original_read(path)
            self.assertTrue(any("code blocks" in problem
                                for problem in translations.differences(pair)))
            english_text = original_read(english)
            translations.read = lambda path: (english_text + "x" if path == english
                                              else original_read(path))
            problems = translations.differences(pair)
            self.assertTrue(any("code blocks" in problem or "changed since" in problem
                                for problem in problems), problems)
        finally:
            translations.read = original_read
