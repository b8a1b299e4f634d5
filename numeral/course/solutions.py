"""Reference solutions of the course's exercises: plain NumPy, one function per exercise.

Kept apart from the chapters so that a chapter can ask for an answer without showing it;
``numeral.course.solution(name)`` returns the function. Each is checked against numeral's
fast layers by ``tests/test_course_checks.py``.
"""

from __future__ import annotations

import numpy as np

from numeral.nn import reference


# ------------------------------------------------------------------------- the loss
def softmax_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """L = mean_i -log softmax(z_i)[y_i];  dL/dz = (softmax(z) - onehot(y)) / n."""
    n = len(y)
    shifted = z - z.max(axis=1, keepdims=True)  # exp cannot overflow; softmax is unchanged
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    loss = np.mean(log_sum - shifted[np.arange(n), y])
    p = np.exp(shifted - log_sum[:, None])
    p[np.arange(n), y] -= 1.0
    return float(loss), p / n


# ------------------------------------------------------------------------ dense
def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z = x W + b."""
    return x @ W + b


def dense_backward(g: np.ndarray, x: np.ndarray,
                   W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx = g W^T,  dW = x^T g,  db = g summed over the rows."""
    return g @ W.T, x.T @ g, g.sum(axis=0)


# ------------------------------------------------------------------- activations
def sigmoid_backward(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """dz = g a (1 - a), with a = sigmoid(z)."""
    return g * a * (1 - a)


def tanh_backward(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """dz = g (1 - a^2), with a = tanh(z)."""
    return g * (1 - a * a)


def relu_backward(g: np.ndarray, z: np.ndarray) -> np.ndarray:
    """dz = g where z > 0, else 0."""
    return g * (z > 0)


# ------------------------------------------------------------------ initialisation
def xavier_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_in, fan_out))


def he_init(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ N(0, 2 / fan_in): standard deviation sqrt(2 / fan_in) (He et al. 2015)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


# ----------------------------------------------------------------- regularisation
def l2_penalty(W: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """R = (l2 / 2) sum W^2,  dR/dW = l2 W."""
    return 0.5 * l2 * float(np.sum(W * W)), l2 * W


def l1_penalty(W: np.ndarray, l1: float) -> tuple[float, np.ndarray]:
    """R = l1 sum |W|,  dR/dW = l1 sign(W)."""
    return l1 * float(np.sum(np.abs(W))), l1 * np.sign(W)


def dropout_backward(g: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dx = g * mask (the mask already holds the 1 / (1 - p))."""
    return g * mask


# ------------------------------------------------------------------- optimisers
def sgd_momentum_step(p: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float,
                      mu: float) -> tuple[np.ndarray, np.ndarray]:
    """v <- mu v - lr g;  p <- p + v."""
    v = mu * v - lr * g
    return p + v, v


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              beta1: float, beta2: float,
              eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    p <- p - lr m^ / (sqrt(v^) + eps), with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


# ------------------------------------------------------------------ convolution
def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int,
                 pad: int) -> np.ndarray:
    """y[i, o, r, s] = b[o] + sum_{c,u,v} W[o, c, u, v] xp[i, c, r*stride + u, s*stride + v]:
    numeral's plain reference (:func:`numeral.nn.reference.conv_forward`, a loop over the
    kernel's offsets) is the solution."""
    return reference.conv_forward(x, W, b, stride, pad)[0]


def conv_backward(g: np.ndarray, x: np.ndarray, W: np.ndarray, stride: int,
                  pad: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forward sums read the other way: each weight collects g times the pixels it met,
    each pixel g times the weights that met it; db sums g over images and pixels."""
    _, _, h, w = x.shape
    k = W.shape[2]
    ho, wo = g.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for u in range(k):
        for v in range(k):
            rows, cols = slice(u, u + stride * ho, stride), slice(v, v + stride * wo, stride)
            dW[:, :, u, v] = np.einsum("iors,icrs->oc", g, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("iors,oc->icrs", g, W[:, :, u, v])
    return dxp[:, :, pad : pad + h, pad : pad + w], dW, g.sum(axis=(0, 2, 3))


def maxpool_backward(g: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """All of g to each window's (first) largest input, 0 to the others."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    # windows[i, ch, r, s, :] = the k*k values of window (r, s), row by row
    windows = (x[:, :, : ho * k, : wo * k].reshape(n, c, ho, k, wo, k)
               .transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, k * k))
    first = windows.argmax(axis=4)  # the first largest, as numeral and PyTorch choose
    onehot = np.arange(k * k) == first[..., None]
    d_windows = onehot * g[..., None]
    dx = np.zeros_like(x)
    dx[:, :, : ho * k, : wo * k] = (d_windows.reshape(n, c, ho, wo, k, k)
                                    .transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * k, wo * k))
    return dx


# ------------------------------------------------------------------- batch norm
def batchnorm_backward(g: np.ndarray, x: np.ndarray, gamma: np.ndarray,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training mode, through xhat, the batch mean and the batch variance:
    dx = gamma / (N sqrt(var + eps)) (N g - sum g - xhat sum(g xhat))."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-feature vector, broadcast over x
    count = x.size // gamma.size  # N: the values each feature's statistics run over
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    dbeta, dgamma = g.sum(axis=axes), (g * xhat).sum(axis=axes)
    dx = (gamma.reshape(shape) / (count * np.sqrt(var + eps))
          * (count * g - dbeta.reshape(shape) - xhat * dgamma.reshape(shape)))
    return dx, dgamma, dbeta
