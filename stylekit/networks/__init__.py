"""Generator networks in pure PyTorch (no compiled extensions).

Parameter and buffer names follow the official NVIDIA implementations (stylegan2-ada-pytorch,
stylegan3), which are the reference for weights: an NVIDIA pickle's tensors load by name, and the
canonical safetensors format stores the same names.
"""
