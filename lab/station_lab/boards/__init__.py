"""Virtual boards for the lab: the reference implementation of the board side of the protocol.

* :mod:`.firmware`: the request handler (what a board's firmware does), over a persistent state;
* :mod:`.tpm`: a real swtpm per board, reached over inherited socketpair file descriptors;
* :mod:`.process`: one board as an OS process on a pseudo-terminal, with baud pacing and faults;
* :mod:`.runner`: starts N boards, writes the lab registry, stops every process it started.
"""
