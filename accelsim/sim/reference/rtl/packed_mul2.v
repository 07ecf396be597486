// Two products that share an operand, out of one multiplier: the INT8 packing of a DSP48E2
// (Xilinx WP486, "Deep Learning with INT8 Optimization on Xilinx Devices"), which is what
// accelsim.sim.engines.systolic means by two products per DSP (Packing n = 2 on ws/os, the
// streamed pair of an is fold).
//
// The pre-adder forms (a1 << 18) + a0 in the DSP's 27-bit A/D path, the multiplier takes it times
// c on the 18-bit B port, and P = a1*c * 2^18 + a0*c. The low 18 bits of P are a0*c (it fits in 18
// bits, two's complement); the bits above are a1*c minus one when a0*c is negative (the borrow),
// so adding P's bit 17 back gives a1*c: WP486's sign correction.
//
// A function in a package rather than a module: the arrays call it once per PE inside a loop, so
// the simulator keeps one copy of its code for the whole array (see ws_array).
package packed_mul2;
    // a0 = a[7:0], a1 = a[15:8], c shared; returns {a1*c, a0*c}, 16 bits each, two's complement
    function automatic [31:0] mul(input [15:0] a, input [7:0] c);
        reg signed [26:0] packed_a;   // the pre-adder's output
        // the guard bits above the two 16-bit products are sign copies
        /* verilator lint_off UNUSEDSIGNAL */
        reg signed [34:0] prod;       // 35 of the DSP's 45 product bits
        reg        [16:0] hi;
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            packed_a = $signed({a[15], a[15:8], 18'b0}) + $signed({{19{a[7]}}, a[7:0]});
            prod = packed_a * $signed(c);
            hi = prod[34:18] + {16'b0, prod[17]};
            mul = {hi[15:0], prod[15:0]};
        end
    endfunction
endpackage
