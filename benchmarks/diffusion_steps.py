"""Seconds per denoising step of the hub editors' architecture on this machine (issue 16).

    OMP_NUM_THREADS=1 python -m benchmarks.diffusion_steps [--sides 256 512] [--repeats 2]

Builds the Stable Diffusion 1.5 UNet (the architecture of InstructPix2Pix and SD inpainting:
channels 320/640/1280/1280, 2 layers per block, cross-attention width 768) and its VAE with
*random* weights (nothing is downloaded; the cost of a step does not depend on the weights) and
times, at each working side, one InstructPix2Pix step (the UNet on a batch of 3: text, image
and unconditional guidance; 8 input channels) and one VAE encode + decode. Torch runs with the
app's threads (``DEMO_TORCH_THREADS``, default 1). Writes ``assets/latency/<device>.json``,
which :mod:`engine.latency` reads as the prior of its estimates until the app has timed real
steps itself; prints the same JSON with the load average at the start and end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def sd15_unet(in_channels: int = 8):
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=64, in_channels=in_channels, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3).eval()


def sd15_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="default: assets/latency/<device>.json")
    args = parser.parse_args(argv)
    threads = int(os.environ.get("DEMO_TORCH_THREADS", "1"))
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    unet, vae = sd15_unet().to(device, dtype), sd15_vae().to(device, dtype)
    g = torch.Generator(device).manual_seed(0)
    steps, vaes = {}, {}
    with torch.no_grad():
        for side in args.sides:
            z = side // 8
            latents = torch.randn(3, 8, z, z, generator=g, device=device, dtype=dtype)
            text = torch.randn(3, 77, 768, generator=g, device=device, dtype=dtype)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                unet(latents, 500, encoder_hidden_states=text)
                times.append(time.perf_counter() - t)
                print(f"side {side}: step {times[-1]:.2f} s", file=sys.stderr, flush=True)
            steps[str(side)] = round(statistics.median(times), 3)
            image = torch.rand(1, 3, side, side, generator=g, device=device, dtype=dtype)
            t = time.perf_counter()
            vae.decode(vae.encode(image).latent_dist.mean)
            vaes[str(side)] = round(time.perf_counter() - t, 3)
            print(f"side {side}: vae {vaes[str(side)]:.2f} s", file=sys.stderr, flush=True)
    out = {"device": device.type, "dtype": str(dtype).removeprefix("torch."),
           "torch_threads": threads, "s_per_step": steps, "vae_s": vaes,
           "what": "SD-1.5 UNet, InstructPix2Pix batch of 3, random weights",
           "repeats": args.repeats, "load_avg_start": round(load_start, 2),
           "load_avg_end": round(os.getloadavg()[0], 2),
           "wall_s": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d"),
           "command": "OMP_NUM_THREADS=1 python -m benchmarks.diffusion_steps "
                      + " ".join(argv if argv is not None else sys.argv[1:])}
    path = Path(args.out) if args.out else ROOT / "assets" / "latency" / f"{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
