# torch_zoo.py: PyTorch's training rate on the CPU for fedvim's four benchmark models, built as
# shared/nn/models.c builds them (tests/torch_parity.py has the same LeNet-5, ResNet-20 and
# MobileNet; VGG-11 here follows build_vgg11), timed the way `fedvim bench train` times them:
# LeNet-5 on 1x28x28 with Adam 1e-3, the others on random 3x32x32 batches with SGD 0.1 momentum
# 0.9; a warm-up of 3 steps, then IMAGES images in batches of BATCH.
# The ViT is tests/torch_vit.py's (the model test_torch_parity checks fedvim's against), timed on
# 3x32x32 like the CNNs.
# usage: python3 torch_zoo.py MODEL BATCH IMAGES [THREADS] [--device cuda[:N]] [--tf32]
#        (MODEL: lenet5 resnet20 vgg11 mobilenet vit; THREADS default 2). Prints one JSON object.
#        --device cuda times on the GPU (the clock read after torch.cuda.synchronize) in FP32:
#        TF32 off for matmuls and cuDNN, as fedvim's default; --tf32 allows it for both (fedvim's
#        --tf32). The JSON names the device and the TF32 setting.
import json, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests'))
from torch_vit import ViT  # noqa: E402

args, device, tf32 = [], 'cpu', False
it = iter(sys.argv[1:])
for a in it:
    if a == '--device':
        device = next(it)
    elif a.startswith('--device='):
        device = a.split('=', 1)[1]
    elif a == '--tf32':
        tf32 = True
    else:
        args.append(a)
model, bs, images = args[0], int(args[1]), int(args[2])
torch.set_num_threads(int(args[3]) if len(args) > 3 else 2)
if device != 'cpu':
    if not torch.cuda.is_available():
        sys.exit(f'torch_zoo.py: --device {device}: this PyTorch sees no CUDA device')
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
elif tf32:
    sys.exit('torch_zoo.py: --tf32 needs --device cuda')
dev = torch.device(device)


def sync():
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def cbr(i, o, k, st, p, g=1):
    return [nn.Conv2d(i, o, k, st, p, groups=g, bias=False), nn.BatchNorm2d(o), nn.ReLU()]


class LeNet5(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 6, 5, padding=2); s.conv2 = nn.Conv2d(6, 16, 5)
        s.fc1 = nn.Linear(400, 120); s.fc2 = nn.Linear(120, 84); s.fc3 = nn.Linear(84, 10)

    def forward(s, x):
        x = F.max_pool2d(F.relu(s.conv1(x)), 2); x = F.max_pool2d(F.relu(s.conv2(x)), 2)
        return s.fc3(F.relu(s.fc2(F.relu(s.fc1(x.flatten(1))))))


class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.shortcut = nn.Sequential() if (st == 1 and i == o) else nn.Sequential(
            nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        y = s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x)))))
        return F.relu(y + s.shortcut(x))


class ResNet20(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(*cbr(3, 16, 3, 1, 1))
        L, i = [], 16
        for si, o in enumerate([16, 32, 64]):
            for k in range(3):
                L.append(Block(i, o, 2 if (k == 0 and si > 0) else 1)); i = o
        s.layers = nn.Sequential(*L); s.fc = nn.Linear(64, 10)

    def forward(s, x):
        return s.fc(F.adaptive_avg_pool2d(s.layers(s.stem(x)), 1).flatten(1))


class VGG11(nn.Module):
    def __init__(s):
        super().__init__()
        L, i = [], 3
        for o in [16, -1, 32, -1, 64, 64, -1, 128, 128, -1, 128, 128]:
            if o < 0:
                L.append(nn.MaxPool2d(2, 2))
            else:
                L += cbr(i, o, 3, 1, 1); i = o
        s.features = nn.Sequential(*L)
        s.classifier = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

    def forward(s, x):
        return s.classifier(F.adaptive_avg_pool2d(s.features(x), 1).flatten(1))


class MobileNet(nn.Module):
    def __init__(s):
        super().__init__()
        L, i = cbr(3, 32, 3, 1, 1), 32
        for o, st in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]:
            L += cbr(i, i, 3, st, 1, i) + cbr(i, o, 1, 1, 0); i = o
        s.body = nn.Sequential(*L); s.fc = nn.Linear(256, 10)

    def forward(s, x):
        return s.fc(F.adaptive_avg_pool2d(s.body(x), 1).flatten(1))


torch.manual_seed(0)
m = {'lenet5': LeNet5, 'resnet20': ResNet20, 'vgg11': VGG11, 'mobilenet': MobileNet,
     'vit': lambda: ViT(3, 32)}[model]().to(dev)
if model == 'lenet5':
    opt = torch.optim.Adam(m.parameters(), 1e-3); shape = (1, 28, 28)
else:
    opt = torch.optim.SGD(m.parameters(), 0.1, momentum=0.9); shape = (3, 32, 32)
x = torch.randn(bs, *shape, device=dev); y = torch.randint(0, 10, (bs,), device=dev)


def step():
    loss = F.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()


for _ in range(3):
    step()
steps = max(1, images // bs)
sync()
t0 = time.time()
for _ in range(steps):
    step()
sync()
t = time.time() - t0
print(json.dumps({'torch': torch.__version__, 'model': model, 'batch': bs, 'threads': torch.get_num_threads(),
                  'device': torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu', 'tf32': tf32,
                  'images': steps * bs, 'seconds': t, 'images_per_second': steps * bs / t}))
