# Warnings for CUDA sources (.cu), included by the root project and the standalone GPU-check
# project. With `werror` on, warnings fail the build as they do for the C++ sources, except
# ptxas's: -Werror=all-warnings would also pass --warning-as-error to ptxas, which makes the
# register-spill reports of -Xptxas=-warn-spills fatal, and the team accepts some spills
# (segment_sum_kernel) while wanting them reported. So all-warnings is given as its parts minus
# ptxas: --promote_warnings for the front ends (cudafe++ and cicc get it through -Xcudafe, as
# -Werror=all-warnings gives it), the named -Werror kinds of nvcc, and -Werror for the host
# compiler. -Wno-restrict as for C++: GCC 12's false positives inside std::string at -O3.
function(kiln_cuda_warnings werror)
  set(flags -Xcompiler=-Wall -Xcompiler=-Wextra -Xcompiler=-Wno-restrict)
  if(werror)
    list(APPEND flags -Xcompiler=-Werror -Xcudafe=--promote_warnings
         -Werror=cross-execution-space-call -Werror=reorder -Werror=deprecated-declarations
         -Werror=default-stream-launch -Werror=ext-lambda-captures-this)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:${flags}>")
endfunction()
