"""Writes examples/mnist_logistic_regression.ipynb (outputs stripped) from the cells below,
so the notebook's source is reviewable as plain Python. Run: python tools/make_notebook.py"""
from pathlib import Path

import nbformat

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell

CELLS = [
    md("# MNIST with logistic regression, told with `mnist-logreg`\n\n"
       "The classic PyTorch tutorial — load MNIST, split it, train one `nn.Linear(784, 10)` with Adam, "
       "look at predictions, evaluate, save and load — with each step a few lines of this package's API. "
       "Then what the tutorial lacks: the exact optimum, tuning, the report figures and your own images.\n\n"
       "Data is read from `$MNIST_LOGREG_DATA` (or `./data`, downloaded when missing)."),
    code("import torch, torch.nn.functional as F\n"
         "import matplotlib.pyplot as plt\n"
         "from mnist_logreg import (load_dataset, split, MnistModel, evaluate, accuracy, predict_image,\n"
         "                          save, load, build_report, TrainConfig, train_run, Run)\n"
         "from mnist_logreg.preprocess import preprocess\n"
         "from mnist_logreg.tuning import lam_path, choose\n"
         "torch.manual_seed(0);"),
    md("## The data\n60,000 training images and 10,000 test images, each 28x28 grey, held in memory as one "
       "`uint8` tensor (no per-image PIL objects)."),
    code("dataset = load_dataset('mnist', 'train')\n"
         "test_dataset = load_dataset('mnist', 'test')\n"
         "len(dataset), len(test_dataset), dataset.images.shape, dataset.images.dtype"),
    code("fig, axes = plt.subplots(1, 8, figsize=(12, 2))\n"
         "for ax, i in zip(axes, range(10, 18)):\n"
         "    image, label = dataset[i]\n"
         "    ax.imshow(image[0], cmap='gray'); ax.set_title(f'Label: {label}'); ax.axis('off')"),
    md("Indexing gives what torchvision's `ToTensor` gave the tutorial: a 1x28x28 float tensor in [0, 1]. "
       "A 5x5 patch of the first image (0 is black, 1 white):"),
    code("img_tensor, label = dataset[0]\n"
         "print(img_tensor.shape, label)\n"
         "print(img_tensor[:, 5:10, 5:10])\n"
         "plt.figure(figsize=(3, 3)); plt.imshow(img_tensor[0, 5:10, 5:10], cmap='gray'); plt.axis('off');"),
    md("## Training and validation split\nA seeded random split: 50,000 to train on, 10,000 to validate."),
    code("train_ds, val_ds = split(dataset, val_size=10_000, seed=0)\nlen(train_ds), len(val_ds)"),
    md("## The model\nOne linear layer from 784 pixels to 10 class scores: 7,840 weights and 10 biases."),
    code("model = MnistModel()\nprint(model)\nmodel.num_parameters()"),
    md("## Softmax, accuracy and the loss\nThe outputs are scores; softmax turns each row into probabilities. "
       "Cross-entropy is the training loss (PyTorch's `F.cross_entropy` applies the softmax itself)."),
    code("images, labels = train_ds.features()[:128], train_ds.labels[:128]\n"
         "outputs = model(images)\n"
         "probs = F.softmax(outputs, dim=1)\n"
         "print('probabilities of the first image:', probs[0].detach().numpy().round(3), 'sum', probs[0].sum().item())\n"
         "print('accuracy before training:', accuracy(outputs, labels).item())\n"
         "print('loss before training:', F.cross_entropy(outputs, labels).item())"),
    md("## Training\nThe tutorial trains in four rounds of 5 epochs with Adam (lr 1e-3, batch 128), the "
       "optimizer state and the history carrying over between rounds. Here the first round is a *run*: "
       "`train_run` trains it into a run folder (checkpoint, history, metrics), on the same 50,000/10,000 "
       "split as above, exactly as `mnist-logreg train` would; `resume` adds a round from the saved "
       "optimizer state, bit for bit the same as training 20 epochs at once. Epoch 0 is the model before "
       "training."),
    code("config = TrainConfig(epochs=5)          # the notebook's settings: Adam, lr 1e-3, batch 128\n"
         "run = train_run(config, runs_dir='runs', name='tutorial', report=False)"),
    code("for round_ in range(3):\n"
         "    run = run.resume(epochs=5, report=False)\n"
         "model = run.model\n"
         "run.path, run.epoch, run.metrics['test_acc']"),
    code("plt.plot([row['val_acc'] for row in run.history], '-x')\n"
         "plt.xlabel('epoch'); plt.ylabel('accuracy'); plt.title('Accuracy vs. No. of epochs');"),
    md("## Testing with individual images"),
    code("fig, axes = plt.subplots(1, 4, figsize=(9, 2.5))\n"
         "for ax, i in zip(axes, [0, 10, 200, 1839]):\n"
         "    img, label = test_dataset[i]\n"
         "    ax.imshow(img[0], cmap='gray'); ax.axis('off')\n"
         "    ax.set_title(f'Label: {label}, Predicted: {predict_image(img, model)}')"),
    md("## Test set"),
    code("result = evaluate(model, test_dataset)\nresult"),
    md("The run folder keeps everything: `Run.open('runs/tutorial')` reads it back (`config`, `history`, "
       "`metrics`, `model`), and `runs/tutorial/config.toml` retrains it with `mnist-logreg train --config`."),
    code("print(open(run.path / 'config.toml').read()[:200])"),
    md("## Saving and loading\nThe checkpoint holds the `state_dict` (keys `linear.weight`, `linear.bias`, "
       "like the tutorial's) and whatever metadata you give it; loading never runs code from the file."),
    code("save(model, 'mnist-logistic.pt', history=run.history, metrics={'test_acc': result['accuracy']})\n"
         "model2 = load('mnist-logistic.pt')\n"
         "evaluate(model2, test_dataset)"),
    md("## Beyond the tutorial: the exact optimum\nMini-batch Adam stops somewhere near the optimum. "
       "`solve` finds it exactly for mean cross-entropy plus `lam/2 ||W||^2` (Newton-CG), and reports "
       "whether it converged. `lam_path` solves for each `lam`, the strongest first, each warm-started from "
       "the one before, and scores it on the validation split; `choose` picks the best:"),
    code("path = lam_path(train_ds, val_ds, [1e-3, 1e-4], log=print)\n"
         "best = choose(path)\n"
         "print(f\"best lam {best['lam']:g}: validation accuracy {best['accuracy']:.4f}, \"\n"
         "      f\"{'converged' if best['converged'] else 'NOT converged'} in {best['iterations']} Newton iterations\")"),
    md("`mnist-logreg tune --refit` (or `tune()` from Python) does this over a grid, picks `lam` on the "
       "validation split, retrains on train+validation and tests once."),
    md("## The report: what the model learned and where it fails"),
    code("page = build_report(run.path, log=None)   # what `mnist-logreg report runs/tutorial` writes\npage"),
    code("from IPython.display import Image, display\n"
         "for name in ['weights.png', 'confusion.png', 'mistakes.png']:\n"
         "    display(Image(filename=run.path / name, width=640))"),
    md("## Your own image\nA photo or drawing is not an MNIST image until it is preprocessed the way MNIST was "
       "(inverted to light-on-dark, cropped, fitted into 20x20, centred by its centre of mass). Here a "
       "'7' drawn dark on a white 300x300 page:"),
    code("from PIL import Image as PILImage, ImageDraw\n"
         "page7 = PILImage.new('L', (300, 300), 255)\n"
         "ImageDraw.Draw(page7).line([(90, 50), (210, 50), (130, 250)], fill=0, width=22)\n"
         "page7.save('seven.png')\n"
         "seen = preprocess('seven.png')\n"
         "fig, (a, b) = plt.subplots(1, 2, figsize=(5, 2.5))\n"
         "a.imshow(page7, cmap='gray'); a.set_title('the file'); b.imshow(seen, cmap='gray'); b.set_title('what the model sees')\n"
         "print('predicted:', predict_image(torch.from_numpy(seen), model))"),
    md("From the command line: `mnist-logreg predict runs/tutorial --image seven.png`. To try it with a "
       "pen: `mnist-logreg serve runs/tutorial` and open http://127.0.0.1:8000/."),
]


def main():
    nb = nbformat.v4.new_notebook(cells=CELLS, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    path = Path(__file__).resolve().parents[1] / "examples" / "mnist_logistic_regression.ipynb"
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
