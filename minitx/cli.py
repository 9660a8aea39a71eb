"""The ``minitx`` command line: ``minitx --help`` lists the commands."""
import argparse
import sys


def demo(args) -> int:
    """Train a small MLP with minitx's autograd on a synthetic two-spirals task and print the loss falling."""
    import numpy as np

    import minitx as mx
    import minitx.nn.functional as F

    mx.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n = 200
    t = rng.uniform(0.25, 3.0, n) * np.pi
    labels = rng.integers(0, 2, n)
    angle = t + np.pi * labels
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1).astype(np.float32) / 10
    w1 = (mx.randn(2, 64) * 0.5).requires_grad_()
    b1 = mx.zeros(64, requires_grad=True)
    w2 = (mx.randn(64, 2) * 0.1).requires_grad_()
    b2 = mx.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]
    for step in range(args.steps + 1):
        logits = (mx.tensor(x) @ w1 + b1).tanh() @ w2 + b2
        loss = F.cross_entropy(logits, labels)
        for p in params:
            p.zero_grad()
        loss.backward()
        with mx.no_grad():
            for p in params:
                p.data -= args.lr * p.grad.data
        if step % max(args.steps // 10, 1) == 0:
            accuracy = (logits.numpy().argmax(1) == labels).mean()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minitx", description="minitx: an educational transformer framework.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("demo", help="train a small model end to end on built-in data")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=demo)
    from minitx.assignments.cli import add_subparser as add_assignment

    add_assignment(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
