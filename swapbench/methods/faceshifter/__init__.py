"""FaceShifter and ReliableSwap w/ FaceShifter, with ReliableSwap's released checkpoints (ygtxr1997/ReliableSwap).

"faceshifter" is the vanilla AEI-Net the ReliableSwap authors retrained (G_tmp_v5); "reliableswap_faceshifter"
is ReliableSwap's MouthNet generator with the post-processing and mouth helper of its evaluation.
"""

METHODS = {
    "faceshifter": "swapbench.methods.faceshifter.method:FaceShifter",
    "reliableswap_faceshifter": "swapbench.methods.faceshifter.method:ReliableSwapFaceShifter",
}
