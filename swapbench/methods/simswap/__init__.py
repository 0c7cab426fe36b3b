"""SimSwap (neuralchen/SimSwap): the 224 "people" model ("simswap") and the 512 beta ("simswap_512").

Entries are imported from .method on first use, so the registry reads METHODS without loading networks.
"""

METHODS = {
    "simswap": "swapbench.methods.simswap.method:SimSwap",
    "simswap_512": "swapbench.methods.simswap.method:SimSwap512",
}
