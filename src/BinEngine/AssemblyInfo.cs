// Marks the library; per-area code lives in Kernels/, Tokenization/, ModelFile/, Runtime/.
[assembly: System.CLSCompliant(false)]
