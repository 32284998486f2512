"""Reading and writing generator checkpoints: NVIDIA pickles, rosinality ``.pt``, canonical safetensors."""
