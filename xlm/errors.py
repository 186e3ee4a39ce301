"""Errors meant for people: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """An expected problem with the input (bad file, bad setting) and how to fix it.

    The message should name the file or key at fault and say what to do.
    """
