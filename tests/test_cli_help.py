"""Every option of every verb says what it does (``alsseg VERB --help`` has no bare option)."""

import argparse

from alsseg.cli import build_parser


def _verbs(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for sub_name, sub_sub in _verbs(sub):
                    yield f"{name} {sub_name}", sub_sub


def test_every_option_of_every_verb_has_help():
    verbs = dict(_verbs(build_parser()))
    assert {"fit-t2", "segment", "run", "convert"} <= set(verbs)
    missing = [f"{verb}: {'/'.join(a.option_strings) or a.dest}"
               for verb, p in verbs.items() for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
               and not (a.help and a.help.strip() and a.help != argparse.SUPPRESS)]
    assert not missing, "options without help:\n" + "\n".join(missing)
