"""Caption throughput: capcse's batched generation with background decoding vs a per-image loop.

Model: ``BlipConfig`` defaults (ViT-B/16 at 384 px + 12-layer BERT-base decoder, the size of
``Salesforce/blip-image-captioning-base``) with random weights, saved and loaded like a hub model.
Images: real Flickr8k JPEGs. Every caption is exactly ``--new-tokens`` tokens long
(``min_new_tokens = max_new_tokens``), so both sides do the same amount of decoding; nucleus sampling
(top-p 0.9) as in the seed; KV cache on in both (transformers' default).

* anchor, "per image" (like the seed's ``caption_Infer_NS_L.py``): for each file, open it, run the
  processor, ``model.generate`` on one image, fp32;
* capcse: ``capcse.caption.run.caption_images`` on the same folder: DataLoader workers decode and
  preprocess in the background, ``--batch-size`` images per ``generate`` call, BLIP's vision attention
  through PyTorch's fused SDPA kernel (``--attention sdpa``, capcse's default), weights in bfloat16
  (``--dtype bf16``: fast on AVX512-BF16 CPUs; ``--autocast bf16`` keeps fp32 weights and casts them
  at every decoding step instead), output chunks written as in a real run.

Both run in this process, one after the other, with the same torch thread count. The last line is
``RESULT caption_throughput ratio=<capcse / per-image images per second> target=4``.
``--profile`` also prints torch.profiler's op table for one batch of the capcse side (not timed).
After the timed runs, the capcse side's vision tower alone is timed on one batch (``vision_only_ips``):
the rate batched captioning would have if decoding cost nothing, and ``vision_only_ratio`` = that rate /
the per-image rate, an upper bound on ``ratio`` measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _find_images(data_dir: Path, n: int) -> list[Path]:
    images = sorted((data_dir / "flickr8k_mini1000" / "images").glob("*.jpg"))
    if len(images) < n:
        sys.exit(f"need {n} images in {data_dir}/flickr8k_mini1000/images, found {len(images)}")
    return images[:n]


def per_image_loop(model_dir: Path, images: list[Path], new_tokens: int, seed: int) -> tuple[float, list[str]]:
    """The seed's way: one image at a time, open + preprocess + generate (fp32)."""
    import torch
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(model_dir)
    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    captions = []
    t0 = time.perf_counter()
    for i, path in enumerate(images):
        image = Image.open(path).convert("RGB")
        inputs = processor(images=image, return_tensors="pt")
        torch.manual_seed(seed + i)
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, top_p=0.9, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens)
        captions.append(processor.decode(out[0], skip_special_tokens=True))
    return time.perf_counter() - t0, captions


def batched(model_dir: Path, folder: Path, out: Path, args) -> tuple[float, int, float]:
    from capcse.caption.generate import Captioner, DecodingConfig
    from capcse.caption.run import RunSettings, caption_images

    captioner = Captioner(str(model_dir), device="cpu", dtype=args.dtype, autocast=args.autocast,
                          attention=args.attention)
    settings = RunSettings(images=str(folder), model=str(model_dir), seed=args.seed, batch_size=args.batch_size,
                           chunk_size=args.batch_size * 4, dtype=args.dtype, autocast=args.autocast,
                           attention=args.attention,
                           decoding=DecodingConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens))
    t0 = time.perf_counter()
    stats = caption_images(settings, out, captioner=captioner, num_workers=args.num_workers, progress=False)
    seconds = time.perf_counter() - t0
    pixels = first_batch(captioner, folder, args.batch_size)
    if args.profile:
        profile_batch(captioner, pixels, settings.decoding, args.seed)
    return seconds, stats.images_now, vision_only_rate(captioner, pixels)


def first_batch(captioner, folder: Path, batch_size: int):
    """The first ``batch_size`` images of ``folder`` through the capcse side's image transform."""
    import torch
    from PIL import Image

    return torch.stack([captioner.transform(Image.open(p).convert("RGB"))
                        for p in sorted(folder.iterdir())[:batch_size]])


def vision_only_rate(captioner, pixels, repeats: int = 2) -> float:
    """Images/s of the capcse side's vision tower alone (BLIP's ``vision_model``) on the batch ``pixels``,
    same dtype and attention, best of ``repeats``: what batched captioning could reach if decoding cost
    nothing -- an upper bound on the batched side measured in the same run."""
    import torch

    pixels = pixels.to(captioner.device, dtype=captioner.dtype)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            captioner.model.vision_model(pixel_values=pixels)
            best = min(best, time.perf_counter() - t0)
    return len(pixels) / best


def profile_batch(captioner, pixels, decoding, seed: int) -> None:
    """torch.profiler over one ``caption`` call: the top ops by self CPU time, per image, with shapes."""
    from torch.profiler import profile

    n = len(pixels)
    with profile(record_shapes=True) as prof:
        captioner.caption(pixels, decoding, seed=seed)
    ops = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in ops)
    print(f"--- profile: one batch of {n}, self CPU ms per image (total {total / 1e3 / n:.0f}) ---")
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:20]:
        print(f"{e.key:50} {e.self_cpu_time_total / 1e3 / n:7.1f} ms  x{e.count:<5d} {str(e.input_shapes)[:90]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CAPCSE_DATA",
                                                         str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--per-image-count", type=int, default=None,
                    help="images for the per-image anchor (default: all; its rate is per image either way)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=16, help="fixed caption length (max = min new tokens)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16", help="capcse side's weight dtype")
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none", help="capcse side's autocast")
    ap.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa", help="capcse side's BLIP vision attention")
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--profile", action="store_true",
                    help="after the batched run, print torch.profiler's op table for one batch (capcse side)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true",
                    help="a tiny random BLIP instead of the BLIP-base size (tests the script; not a speed figure)")
    ap.add_argument("--quick", action="store_true", help="8 images in one batch, 4 per-image (< 3 min on an idle machine)")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.batch_size, args.per_image_count = 8, 8, args.per_image_count or 4

    import torch

    torch.set_num_threads(args.threads)
    from capcse.caption.random_models import save_random_blip

    images = _find_images(Path(args.data_dir), args.images)
    n_anchor = min(args.per_image_count or len(images), len(images))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = save_random_blip(tmp / "blip-random", tiny=args.tiny)
        folder = tmp / "images"
        folder.mkdir()
        for p in images:
            os.symlink(p.resolve(), folder / p.name)  # absolute: a relative --data-dir would dangle here
        print(f"BLIP-{'tiny' if args.tiny else 'base'} config, random weights; {len(images)} images, {args.new_tokens} new tokens, "
              f"{args.threads} threads; capcse side: dtype={args.dtype} autocast={args.autocast} "
              f"attention={args.attention}", flush=True)

        t_b, n_b, vision_ips = batched(model_dir, folder, tmp / "out", args)
        if n_b != len(images):
            raise SystemExit(f"the batched side captioned {n_b} of {len(images)} images (see its skip report)")
        rate_b = n_b / t_b
        print(f"batched   : {n_b} images in {t_b:.1f} s = {rate_b:.3f} images/s "
              f"(batch {args.batch_size}, {args.num_workers} decode workers)", flush=True)
        print(f"vision tower alone (capcse side, one batch of {min(args.batch_size, len(images))}): "
              f"{vision_ips:.3f} images/s", flush=True)
        t_a, caps = per_image_loop(model_dir, images[:n_anchor], args.new_tokens, args.seed)
        rate_a = n_anchor / t_a
        print(f"per-image : {n_anchor} images in {t_a:.1f} s = {rate_a:.3f} images/s", flush=True)
        assert len(caps) == n_anchor
    ratio = rate_b / rate_a
    print(f"RESULT caption_throughput ratio={ratio:.2f} target=4 batched_ips={rate_b:.3f} per_image_ips={rate_a:.3f} "
          f"vision_only_ips={vision_ips:.3f} vision_only_ratio={vision_ips / rate_a:.2f} "
          f"images={len(images)} batch_size={args.batch_size} new_tokens={args.new_tokens} dtype={args.dtype} "
          f"autocast={args.autocast} attention={args.attention}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
