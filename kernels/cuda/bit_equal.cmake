# The CUDA kernels that claim bit equality with the CPU path (docs/cuda.md, "Bit-equal to the
# CPU"). nvcc contracts a*b + c into one FMA by default; the CPU build (-std=c++20, no GNU
# extensions) does not (-ffp-contract=off), so these files are built with -fmad=false: a later
# edit that adds a multiply-add cannot silently change their bits. Included by kernels/ and by
# the standalone GPU-check project.
set(KILN_CUDA_BIT_EQUAL_SOURCES embedding.cu pooling.cu dropout.cu reference_reduce.cu reference_optimizer.cu
    sparse_rows.cu reference_embedding.cu)

# Marks the bit-equal sources in directory `cuda_dir` (call from the directory defining the target).
function(kiln_cuda_bit_equal cuda_dir)
  foreach(f ${KILN_CUDA_BIT_EQUAL_SOURCES})
    set_source_files_properties(${cuda_dir}/${f} PROPERTIES COMPILE_OPTIONS "-fmad=false")
  endforeach()
endfunction()
