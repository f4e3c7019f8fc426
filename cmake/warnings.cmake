# Warnings are set per target on our own code only (third-party headers are SYSTEM includes).
function(ubuzima_set_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>
        $<$<BOOL:${UBUZIMA_WARNINGS_AS_ERRORS}>:-Werror>)
endfunction()
