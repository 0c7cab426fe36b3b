"""FaceShifter and ReliableSwap w/ FaceShifter, with ReliableSwap's released checkpoints (ygtxr1997/ReliableSwap).

"faceshifter" is the vanilla AEI-Net the ReliableSwap authors retrained (G_tmp_v5); "reliableswap_faceshifter"
is ReliableSwap's MouthNet generator with the post-processing and mouth helper of its evaluation;
"reliableswap_simswap" (G_mouth1_st5) and "simswap_retrained" (G_tmp_sv4_off) are the SimSwap generators
ReliableSwap retrained (with and without its method).
"""

METHODS = {
    "faceshifter": "swapbench.methods.faceshifter.method:FaceShifter",
    "reliableswap_faceshifter": "swapbench.methods.faceshifter.method:ReliableSwapFaceShifter",
    "reliableswap_simswap": "swapbench.methods.faceshifter.simswap:ReliableSwapSimSwap",
    "simswap_retrained": "swapbench.methods.faceshifter.simswap:SimSwapRetrained",
}
