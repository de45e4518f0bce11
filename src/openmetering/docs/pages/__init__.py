"""The page families of the site, one module each (in the manner of KiBot's outputs): each
declares the inputs it reads and the fragments it writes (`FRAGMENTS`)."""

from . import api, board, bom, checks, contract, fab, pins, readmes

FAMILIES = (pins, contract, api, bom, board, checks, fab, readmes)
