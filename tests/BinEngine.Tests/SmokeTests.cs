namespace BinEngine.Tests;

public class SmokeTests
{
    [Fact]
    public void LibraryAssemblyLoads() => Assert.Equal("BinEngine.Core", typeof(BinEngine.AssemblyMarker).Assembly.GetName().Name);
}
