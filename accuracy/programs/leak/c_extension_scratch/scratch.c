/* A tiny extension whose digest() leaks a 192 KiB scratch buffer per call and returns a short str. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

static PyObject *digest(PyObject *self, PyObject *args) {
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "n", &n)) return NULL;
    unsigned char *scratch = malloc(192 * 1024);
    if (!scratch) return PyErr_NoMemory();
    memset(scratch, (int)(n & 0xff), 192 * 1024);
    unsigned long sum = 0;
    for (size_t i = 0; i < 192 * 1024; i += 4096) sum += scratch[i];
    /* the leak: scratch is never freed */
    return PyUnicode_FromFormat("digest-%lu-%zd", sum, n);
}

static PyMethodDef methods[] = {{"digest", digest, METH_VARARGS, "digest(n) -> str"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "scratch", NULL, -1, methods};
PyMODINIT_FUNC PyInit_scratch(void) { return PyModule_Create(&module); }
