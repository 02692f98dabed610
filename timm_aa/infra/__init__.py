"""The tools' infrastructure, below every tool that uses it: the layout of what they write (:mod:`.layout`), the
guarded file operations (:mod:`.fs`), the one-writer lock (:mod:`.lock`), markers and ownership of output folders
(:mod:`.marker`, :mod:`.ownership`), the rules and the bounds table for values we did not choose (:mod:`.rules`,
:mod:`.bounds`), bounded Hub access (:mod:`.hub_access`), safe checkpoint reading (:mod:`.checkpoint`), the input
size check (:mod:`.input_check`) and the scripts' one-line errors (:mod:`.cli`).

Nothing is imported here: the scripts load the standard-library-only modules of this package before torch.
"""
