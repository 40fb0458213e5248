"""The lab's commands, added to the ``station`` command by the ``station.cli`` entry points."""
