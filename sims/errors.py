"""Errors raised for bad data files and bad input to the simulator."""


class DataError(ValueError):
    """A scenario, terrain or unit data file is malformed; the message names the file and field."""

    def __init__(self, path, field, problem):
        self.path = str(path)
        self.field = field
        super().__init__(f"{self.path}: field '{field}': {problem}")
