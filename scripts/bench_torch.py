#!/usr/bin/env python3
"""The PyTorch speed peer of `sweeplaw bench`, run in the same command on the same device.

The model is DESIGN.md's decoder-only transformer (pre-norm RMSNorm, rotary embeddings, causal
multi-head attention, GELU MLP of 4·d, no biases, untied head, f32 cross-entropy), trained with
AdamW and global-norm clipping on random tokens, as in scripts/ref_torch_train.py. For
each shape it times PyTorch eager, PyTorch with torch.compile, and `sweeplaw bench --json`, then
prints one Markdown table (tokens/s, model FLOP/s in the matmul_attn convention, MFU against the
measured dense matmul peak, and sweeplaw's speed relative to eager) and writes bench.json and
bench.md into --out.

  CPU:  python scripts/bench_torch.py --device cpu --threads 2 --shapes reference --sweeplaw target/release/sweeplaw
  GPU:  python scripts/bench_torch.py --device cuda --dtype bfloat16 --sweeplaw ./sweeplaw --out results/bench-h200

Model FLOPs per token (matmul_attn, src/model.rs): 6·(12·L·d² + d·V) + 6·L·T·d.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    # name: (d_model, n_layers, n_heads, seq_len, vocab_size, batch_size)
    "reference": (256, 4, 4, 256, 2048, 16),
    "mid": (512, 8, 8, 512, 8192, 16),
    "gpt2-small": (768, 12, 12, 1024, 50304, 16),
}


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):  # (B, T, d)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def rope(x, cos, sin):  # x: (B, H, T, hd); interleaved pairs, as candle's rope_i
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.norm_attn, self.norm_mlp = RMSNorm(d), RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.up = nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(4 * d, d, bias=False)

    def forward(self, x, cos, sin):  # (B, T, d)
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.norm_mlp(x))))


class Transformer(nn.Module):
    def __init__(self, d, layers, heads, seq_len, vocab):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        head_dim = d // heads
        inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        angles = torch.outer(torch.arange(seq_len).float(), inv)
        self.register_buffer("cos", angles.cos())
        self.register_buffer("sin", angles.sin())

    def forward(self, ids, targets):  # (B, T) -> scalar loss
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        logits = self.head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, self.vocab), targets.view(-1))


def flops_per_token(d, layers, seq_len, vocab):
    """matmul_attn convention (src/model.rs): 6·params_matmul + 6·L·T·d."""
    return 6 * (12 * layers * d * d + d * vocab) + 6 * layers * seq_len * d


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_torch(shape, args, compile_model):
    d, layers, heads, seq_len, vocab, batch = shape
    torch.manual_seed(0)
    model = Transformer(d, layers, heads, seq_len, vocab).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, fused=args.device.startswith("cuda"))
    step_fn = torch.compile(model) if compile_model else model
    dtype = getattr(torch, args.dtype)
    device_type = args.device.split(":")[0]

    def step():
        ids = torch.randint(0, vocab, (batch, seq_len), device=args.device)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
            loss = step_fn(ids, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup + (3 if compile_model else 0)):
        step()
    sync(args.device)
    started = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    sync(args.device)
    elapsed = time.perf_counter() - started
    return args.steps * batch * seq_len / elapsed


def matmul_peak(args):
    """Best dense matmul rate (FLOP/s) in the run's dtype: the MFU denominator."""
    dtype = getattr(torch, args.dtype)
    n = 8192 if args.device.startswith("cuda") else 1024
    a = torch.randn(n, n, device=args.device, dtype=dtype)
    b = torch.randn(n, n, device=args.device, dtype=dtype)
    best = 0.0
    for _ in range(5):
        sync(args.device)
        started = time.perf_counter()
        reps = 20 if args.device.startswith("cuda") else 3
        for _ in range(reps):
            a @ b
        sync(args.device)
        best = max(best, reps * 2 * n**3 / (time.perf_counter() - started))
    return best


def time_sweeplaw(shape, args, composite=False):
    d, layers, heads, seq_len, vocab, batch = shape
    precision = "bf16" if args.dtype == "bfloat16" else "f32"
    device = "cuda:0" if args.device.startswith("cuda") else "cpu"
    command = [args.sweeplaw, "bench", "--json", "--device", device, "--precision", precision,
               "--d-model", str(d), "--n-layers", str(layers), "--n-heads", str(heads), "--seq-len", str(seq_len),
               "--vocab-size", str(vocab), "--batch-size", str(batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--composite"] if composite else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 (default: bfloat16 on CUDA)")
    parser.add_argument("--shapes", default="reference,mid,gpt2-small", help=",".join(SHAPES))
    parser.add_argument("--modes", default="eager,compile", help="torch modes to time: eager,compile")
    parser.add_argument("--sweeplaw", default="target/release/sweeplaw", help="binary to time ('' to skip)")
    parser.add_argument("--sweeplaw-modes", default=None,
                        help="fused,composite: sweeplaw's fused ops/kernels and candle's composite ops "
                             "(default: both on CUDA, fused on the CPU)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (and RAYON_NUM_THREADS)")
    parser.add_argument("--out", default=None, help="folder for bench.json and bench.md")
    args = parser.parse_args()
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    args.sweeplaw_modes = args.sweeplaw_modes or ("fused,composite" if args.device.startswith("cuda") else "fused")
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
    if unknown:
        sys.exit(f"unknown shape(s) {unknown}; known: {list(SHAPES)}")

    peak = matmul_peak(args)
    rows = []
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        per_token = flops_per_token(shape[0], shape[1], shape[3], shape[4])
        row = {"shape": name, "d_model": shape[0], "n_layers": shape[1], "n_heads": shape[2], "seq_len": shape[3],
               "vocab_size": shape[4], "batch_size": shape[5], "flops_per_token": per_token}
        for mode in args.modes.split(","):
            row[f"torch_{mode}_tokens_per_s"] = time_torch(shape, args, mode == "compile")
        for mode in args.sweeplaw_modes.split(",") if args.sweeplaw else []:
            result = time_sweeplaw(shape, args, composite=mode == "composite")
            system = "sweeplaw" if mode == "fused" else "sweeplaw_composite"
            row[f"{system}_tokens_per_s"] = result["tokens_per_s"]
            row[f"{system}_step_ms"] = {k: result[k] for k in ("forward_ms", "backward_ms", "optimizer_ms")}
            row["sweeplaw_peak_flops_per_s"] = result["peak_flops_per_s"]
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items() if k.endswith("tokens_per_s")),
              file=sys.stderr)
        # Written after every shape, so a run stopped by a time cap keeps the shapes it finished.
        table = write_results(rows, args, peak)
    print(table)


def write_results(rows, args, measured_peak):
    """bench.json and bench.md for the rows so far; returns the markdown table."""
    # The MFU denominator is the best matmul rate either side measured (one short measurement can
    # come out low on a busy machine and make an MFU look above 100%).
    peak = max([measured_peak] + [row["sweeplaw_peak_flops_per_s"] for row in rows if "sweeplaw_peak_flops_per_s" in row])
    table = markdown(rows, args, peak)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        meta = {"torch": torch.__version__, "device": device_name(args.device), "dtype": args.dtype,
                "threads": torch.get_num_threads(), "matmul_peak_flops_per_s": peak, "steps": args.steps}
        with open(os.path.join(args.out, "bench.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
        with open(os.path.join(args.out, "bench.md"), "w") as f:
            f.write(table + "\n")
    return table


def device_name(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({torch.get_num_threads()} threads)"


def markdown(rows, args, peak):
    systems = [k[: -len("_tokens_per_s")] for k in rows[0] if k.endswith("_tokens_per_s")]
    lines = [f"{device_name(args.device)}, {args.dtype}, torch {torch.__version__}, "
             f"measured matmul peak {peak / 1e12:.1f} TFLOP/s; MFU = model FLOP/s (matmul_attn) / that peak", "",
             "| shape | system | tokens/s | model TFLOP/s | MFU | vs eager |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        eager = row.get("torch_eager_tokens_per_s")
        for system in systems:
            tps = row[f"{system}_tokens_per_s"]
            flops = tps * row["flops_per_token"]
            ratio = f"{tps / eager:.2f}x" if eager else "-"
            lines.append(f"| {row['shape']} | {system} | {tps:,.0f} | {flops / 1e12:.3f} | {flops / peak:.1%} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
