// Marks the library; per-area code lives in Kernels/, Tokenization/, ModelFile/, Runtime/.
[assembly: System.CLSCompliant(false)]

namespace BinEngine
{
    /// <summary>A type to name this assembly by (tests, reflection).</summary>
    public static class AssemblyMarker { }
}
